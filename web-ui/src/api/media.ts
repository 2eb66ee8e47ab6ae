// Files over the node's API: upload with progress, authorized download.
// Media is behind the bearer token (the node answers 404 to anyone who may
// not see a file), so an <img src> cannot load it: the store fetches files
// here and shows them through object URLs (store/media.ts).

import { ApiError, accessToken } from './client';
import type { MediaUpload } from './types';

/** The bytes at `path`, fetched with the session's token. */
export async function fetchBlob(path: string): Promise<Blob> {
  const token = await accessToken();
  if (!token) throw new ApiError(401, 'no_session', 'Log in first.');
  const response = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new ApiError(response.status, 'download', `Download failed (${response.status}).`);
  return response.blob();
}

/** Uploads a file; `progress` gets the fraction sent. XHR, because fetch
 *  reports no upload progress. */
export async function upload(file: Blob, name: string, progress: (f: number) => void): Promise<MediaUpload> {
  const token = await accessToken();
  if (!token) throw new ApiError(401, 'no_session', 'Log in first.');
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/media?name=${encodeURIComponent(name)}`);
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.setRequestHeader('content-type', file.type || 'application/octet-stream');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'Cannot reach the node. Check your connection.'));
    xhr.onload = () => {
      let json: { code?: string; message?: string } & Partial<MediaUpload> = {};
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        // A proxy's page: reported below by status.
      }
      if (xhr.status === 201) resolve(json as MediaUpload);
      else reject(new ApiError(xhr.status, json.code ?? 'http', json.message ?? `Upload failed (${xhr.status}).`));
    };
    xhr.send(file);
  });
}

