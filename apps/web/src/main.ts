import './style.css';
import { Demo, type StreamAnchorDemoApi } from './demo';
import { mountView } from './view';

declare global {
  interface Window {
    /** Automation surface for tests; see StreamAnchorDemoApi in ./demo.ts. */
    streamAnchorDemo: StreamAnchorDemoApi;
  }
}

// The gateway serves this page, so the API is on the same origin. `#gateway=<url>`
// points the page at another gateway (it must allow this origin in CORS_ORIGINS).
const fragment = new URLSearchParams(window.location.hash.slice(1));
const baseUrl = (fragment.get('gateway') ?? window.location.origin).replace(/\/+$/, '');
const demo = new Demo(baseUrl);

Object.defineProperty(window, 'streamAnchorDemo', {
  value: demo.api(),
  writable: false,
  configurable: false,
});
mountView(demo);

demo.loadInfo().catch(() => {
  // Shown when connecting; verification needs it.
});

const token = fragment.get('token');
if (token) {
  (document.getElementById('token') as HTMLInputElement).value = token;
  // Keep the token out of the visible URL (and of screenshots and shared links).
  history.replaceState(null, '', window.location.pathname + window.location.search);
  void demo.connect(token);
  // The subscriber side by side: its own session, subscribed to the demo topic live.
  void demo.startSubscriber(token, 'demo');
}
