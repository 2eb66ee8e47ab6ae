// What message rows need from the room around them.

import { createContext } from 'preact';

export interface RoomActions {
  room: string;
  /** The row being edited, if any. */
  editing: string | null;
  startEdit(id: string | null): void;
  startReply(id: string): void;
  openThread(root: string): void;
  /** Focus the composer (after Escape in the timeline). */
  focusComposer(): void;
  /** Inside the thread panel: no thread buttons, replies go to the thread. */
  inThread: boolean;
}

export const RoomContext = createContext<RoomActions | null>(null);
