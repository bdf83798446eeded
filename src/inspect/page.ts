/**
 * The page the relay serves to a browser: the Stately inspector in a frame, fed with the events the relay
 * receives over its WebSocket. The inspector says it is ready with a `@statelyai.connected` message;
 * events that arrive before that wait in the page.
 */
export function bridgePage(inspectorUrl: string): string {
  const frameUrl = JSON.stringify(inspectorUrl);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Warden - Stately inspector</title>
<style>html, body, iframe { margin: 0; width: 100%; height: 100%; border: 0; }</style>
</head>
<body>
<iframe id="stately" title="Stately inspector"></iframe>
<script>
  const frame = document.getElementById('stately');
  frame.src = ${frameUrl};
  const waiting = [];
  let inspectorReady = false;
  const forward = (event) => frame.contentWindow.postMessage(event, '*');
  window.addEventListener('message', (message) => {
    if (message.data && message.data.type === '@statelyai.connected' && !inspectorReady) {
      inspectorReady = true;
      waiting.splice(0).forEach(forward);
    }
  });
  const socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/events');
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (inspectorReady) forward(event);
    else waiting.push(event);
  };
</script>
</body>
</html>
`;
}
