export interface BridgePageOptions {
  /** The Stately inspector UI the page frames. */
  readonly inspectorUrl: string;
  /** Warden's HTTP port, for the link to the dashboard at /ui (which works without internet). */
  readonly dashboardPort?: number | undefined;
  /** How long the page waits for the inspector to say it is ready before it says it cannot be reached. */
  readonly readyTimeoutMs?: number | undefined;
}

/**
 * The page the relay serves to a browser: the Stately inspector in a frame, fed with the events the relay
 * receives over its WebSocket. The inspector says it is ready with a `@statelyai.connected` message;
 * events that arrive before that wait in the page (bounded). When that message never comes (stately.ai
 * cannot be reached: most training clusters have no internet), the page says so and points to /ui. The
 * socket reconnects by itself after Warden restarts, and the page says while it is disconnected.
 */
export function bridgePage(options: BridgePageOptions): string {
  const settings = JSON.stringify({
    frameUrl: options.inspectorUrl,
    dashboardPort: options.dashboardPort ?? null,
    readyTimeoutMs: options.readyTimeoutMs ?? 8000,
  }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Warden - Stately inspector</title>
<style>
  html, body { margin: 0; width: 100%; height: 100%; font: 15px system-ui, sans-serif; }
  body { display: flex; flex-direction: column; }
  iframe { flex: 1; width: 100%; border: 0; }
  #status { padding: 4px 10px; background: #eef; }
  #status.down { background: #fdd; }
  #offline { display: none; padding: 24px; max-width: 46em; }
  #offline.shown { display: block; }
</style>
</head>
<body>
<div id="status" role="status">connecting to Warden...</div>
<div id="offline" role="alert">
  <h1>The Stately inspector cannot be reached</h1>
  <p>This page frames <span id="frame-url"></span>, which did not answer: this browser probably has no
  internet access (most training clusters have none).</p>
  <p>Warden's own dashboard needs no internet: <a id="dashboard" href="/ui">open the dashboard at /ui</a>
  on Warden's HTTP port.</p>
</div>
<iframe id="stately" title="Stately inspector"></iframe>
<script>
  const settings = ${settings};
  const frame = document.getElementById('stately');
  const status = document.getElementById('status');
  const offline = document.getElementById('offline');
  document.getElementById('frame-url').textContent = settings.frameUrl;
  if (settings.dashboardPort) {
    document.getElementById('dashboard').href =
      location.protocol + '//' + location.hostname + ':' + settings.dashboardPort + '/ui';
  }
  frame.src = settings.frameUrl;
  const waiting = [];
  let inspectorReady = false;
  const forward = (event) => frame.contentWindow.postMessage(event, '*');
  setTimeout(() => {
    if (inspectorReady) return;
    offline.classList.add('shown');
    frame.style.display = 'none';
  }, settings.readyTimeoutMs);
  window.addEventListener('message', (message) => {
    if (message.data && message.data.type === '@statelyai.connected' && !inspectorReady) {
      inspectorReady = true;
      offline.classList.remove('shown');
      frame.style.display = '';
      waiting.splice(0).forEach(forward);
    }
  });
  let delay = 500;
  function connect() {
    const socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/events');
    socket.onopen = () => {
      delay = 500;
      status.textContent = 'connected to Warden';
      status.className = '';
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (inspectorReady) forward(event);
      else if (waiting.push(event) > 5000) waiting.shift();
    };
    socket.onclose = () => {
      status.textContent = 'disconnected from Warden: reconnecting...';
      status.className = 'down';
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }
  connect();
</script>
</body>
</html>
`;
}
