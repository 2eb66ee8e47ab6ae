// Loaded with `node --import` by `npm test`: lets the modules compiled
// into .unit/ import each other the way the sources do (and Vite
// resolves), without a file extension.
import { register } from 'node:module';

register('./resolve.mjs', import.meta.url);
