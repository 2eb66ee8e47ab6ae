// Entry point: theme first (before the first paint we control), then the app.

import { render } from 'preact';
import './styles.css';
import { App } from './ui/App';
import { applyTheme } from './ui/theme';

applyTheme();
render(<App />, document.getElementById('app')!);
