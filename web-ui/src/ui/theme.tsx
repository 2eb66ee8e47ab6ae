// Light, dark, or follow the system. The choice is stored per browser and
// applied as data-theme on <html>; CSS falls back to prefers-color-scheme.

import { useState } from 'preact/hooks';
import { Icon } from './common';

type Theme = 'system' | 'light' | 'dark';
const KEY = 'spaces.theme';
const ORDER: Theme[] = ['system', 'light', 'dark'];

function stored(): Theme {
  try {
    const value = localStorage.getItem(KEY);
    return value === 'light' || value === 'dark' ? value : 'system';
  } catch {
    return 'system';
  }
}

export function applyTheme(theme: Theme = stored()): void {
  const root = document.documentElement;
  if (theme === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', theme);
}

export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(stored);
  const next = ORDER[(ORDER.indexOf(theme) + 1) % ORDER.length];
  const label = { system: 'system', light: 'light', dark: 'dark' }[theme];
  return (
    <button
      type="button"
      class="icon-button"
      aria-label={`Theme: ${label}. Switch to ${next}`}
      title={`Theme: ${label}`}
      onClick={() => {
        try {
          if (next === 'system') localStorage.removeItem(KEY);
          else localStorage.setItem(KEY, next);
        } catch {
          // Not stored: applies to this page only.
        }
        applyTheme(next);
        setTheme(next);
      }}
    >
      <Icon name={theme === 'system' ? 'contrast' : theme === 'light' ? 'sun' : 'moon'} />
    </button>
  );
}
