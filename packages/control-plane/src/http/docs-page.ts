/**
 * The API reference at /docs: one self-contained HTML page (no CDN) that fetches
 * /openapi.json and renders every operation with its parameters, body and responses.
 */
export function docsPageHtml(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 960px; padding: 1rem 2rem; color: #1d232a; }
  h2 { border-bottom: 1px solid #ddd; margin-top: 2rem; }
  details { border: 1px solid #e2e6ea; border-radius: 6px; margin: .4rem 0; padding: .3rem .8rem; }
  summary { cursor: pointer; }
  .m { display: inline-block; width: 4.5rem; font-weight: 600; font-family: monospace; }
  .GET { color: #1a7f37; } .POST { color: #0969da; } .PUT, .PATCH { color: #9a6700; } .DELETE { color: #cf222e; }
  code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
  pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; border-radius: 4px; }
  table { border-collapse: collapse; } td, th { border: 1px solid #e2e6ea; padding: .2rem .5rem; text-align: left; }
</style>
</head>
<body>
<h1>${title}</h1>
<p>Machine-readable contract: <a href="/openapi.json">/openapi.json</a>. Authenticate with
<code>Authorization: Bearer wrn_…</code> or <code>X-API-Key: wrn_…</code>. Errors are
<code>{"error":{"code","message"}}</code>.</p>
<div id="ops">Loading…</div>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const pretty = (v) => "<pre>" + esc(JSON.stringify(v, null, 2)) + "</pre>";
fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      (byTag[op.tags[0]] ??= []).push({ path, method: method.toUpperCase(), op });
    }
  }
  let html = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    html += "<h2>" + esc(tag) + "</h2>";
    for (const { path, method, op } of ops) {
      html += "<details><summary><span class='m " + method + "'>" + method + "</span><code>" + esc(path) +
        "</code> — " + esc(op.summary) + "</summary>";
      if (op.parameters.length) {
        html += "<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>";
        for (const p of op.parameters) html += "<tr><td>" + esc(p.name) + "</td><td>" + p.in + "</td><td>" + p.required + "</td><td><code>" + esc(JSON.stringify(p.schema)) + "</code></td></tr>";
        html += "</table>";
      }
      if (op.requestBody) html += "<p>Request body</p>" + pretty(op.requestBody.content);
      for (const [status, res] of Object.entries(op.responses)) {
        html += "<p>" + esc(status) + ": " + esc(res.description) + "</p>" + (res.content ? pretty(res.content) : "");
      }
      html += "</details>";
    }
  }
  document.getElementById("ops").innerHTML = html;
});
</script>
</body>
</html>
`;
}
