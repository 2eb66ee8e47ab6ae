// Role colours on names: a member's name takes the colour of their
// highest-ranked role that has one (as Discord does).

import type { RoleJson } from '../api/types';
import type { RoomEntry } from '../store';

/** `color` (0xRRGGBB) as CSS for a name or a role chip; nothing when unset. */
export function roleColorCss(color: number | null | undefined): Record<string, string> | undefined {
  return color == null ? undefined : { '--role': `#${color.toString(16).padStart(6, '0')}` };
}

/** The colour of `user`'s name in `room`, if a role they hold gives one. */
export function nameColor(entry: RoomEntry | undefined, user: string): number | null {
  const page = entry?.members;
  if (!page) return null;
  const member = page.members.find((m) => m.user_id === user);
  if (!member || member.roles.length === 0) return null;
  let best: RoleJson | null = null;
  for (const id of member.roles) {
    const role = page.roles.find((r) => r.role === id);
    if (role && role.color != null && (!best || role.rank > best.rank)) best = role;
  }
  return best?.color ?? null;
}

