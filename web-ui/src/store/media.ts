// Media in the client: object URLs of authorized downloads, cached per
// path while the session lives and revoked on logout (`owned`).

import { fetchBlob, upload } from '../api/media';
import type { AttachmentJson, MediaUpload } from '../api/types';
import { owned } from './core';

/** Object URLs at most: thumbnails of a long scroll, then the oldest go. */
const MAX_URLS = 200;

const urls = owned(
  () => new Map<string, Promise<string>>(),
  (old) => {
    for (const url of old.values()) void url.then((u) => URL.revokeObjectURL(u), () => {});
  },
);

/** Images the node decoded (and stripped) are shown inline; all else is a file chip. */
export function isImage(a: { mime: string }): boolean {
  return ['image/jpeg', 'image/png', 'image/gif', 'image/webp'].includes(a.mime);
}

export function mediaPath(a: { hash: string; name?: string }): string {
  const name = a.name ? `?name=${encodeURIComponent(a.name)}` : '';
  return `/api/v1/media/${a.hash}${name}`;
}

export function thumbnailPath(a: { hash: string }, size: number): string {
  return `/api/v1/media/${a.hash}/thumbnail?size=${size}`;
}

/** An object URL of an authorized GET of `path` (cached). */
export function blobUrl(path: string): Promise<string> {
  const cache = urls.value;
  const hit = cache.get(path);
  if (hit) return hit;
  const made = (async () => {
    return URL.createObjectURL(await fetchBlob(path));
  })();
  made.catch(() => cache.delete(path));
  cache.set(path, made);
  if (cache.size > MAX_URLS) {
    const [oldest, url] = cache.entries().next().value as [string, Promise<string>];
    cache.delete(oldest);
    void url.then((u) => URL.revokeObjectURL(u), () => {});
  }
  return made;
}

/** Saves an attachment as a file. */
export async function download(a: AttachmentJson): Promise<void> {
  const url = await blobUrl(mediaPath(a));
  const link = document.createElement('a');
  link.href = url;
  link.download = a.name;
  link.rel = 'noopener';
  link.click();
}

/** The attachments of a message's content. */
export function attachmentsOf(content: Record<string, unknown>): AttachmentJson[] {
  const list = content.attachments;
  return Array.isArray(list) ? (list as AttachmentJson[]) : [];
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Uploads a file for the composer. */
export function uploadFile(file: Blob, name: string, progress: (f: number) => void): Promise<MediaUpload> {
  return upload(file, name, progress);
}
