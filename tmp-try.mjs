import { Sandbox } from "e2b";

const t0 = Date.now();
const log = (...a) => console.log(((Date.now() - t0) / 1000).toFixed(1) + "s", ...a);
const sbx = await Sandbox.create({ metadata: { who: "try" } });
log("created", sbx.sandboxId);
try {
  // signed upload/download URLs through the proxy
  const up = await sbx.uploadUrl("/home/user/up.txt");
  log("uploadUrl", up.slice(0, 120));
  const form = new FormData();
  form.append("file", new Blob(["hello via url"]), "up.txt");
  const r1 = await fetch(up, { method: "POST", body: form });
  log("upload status", r1.status);
  const down = await sbx.downloadUrl("/home/user/up.txt");
  const r2 = await fetch(down);
  log("download", r2.status, await r2.text());
  // background command + connect
  const h = await sbx.commands.run("for i in 1 2 3; do echo tick $i; sleep 1; done", { background: true });
  const again = await sbx.commands.connect(h.pid, { onStdout: (d) => log("connected stdout", d.trim()) });
  const res = await again.wait();
  log("bg exit", res.exitCode);
  // watchDir
  const events = [];
  const w = await sbx.files.watchDir("/home/user", (e) => events.push(e.type + ":" + e.name));
  await sbx.files.write("/home/user/w.txt", "x");
  await new Promise((r) => setTimeout(r, 1500));
  await w.stop();
  log("watch events", events);
  // files api breadth
  log("exists", await sbx.files.exists("/home/user/w.txt"), await sbx.files.exists("/nope"));
  await sbx.files.rename("/home/user/w.txt", "/home/user/w2.txt");
  log("info", JSON.stringify(await sbx.files.getInfo("/home/user/w2.txt")).slice(0, 200));
  await sbx.files.write([
    { path: "/home/user/a.txt", data: "A" },
    { path: "/home/user/b.txt", data: "B" },
  ]);
  log(
    "list",
    (await sbx.files.list("/home/user")).map((e) => e.name),
  );
  // list paginator
  const p = Sandbox.list({ query: { metadata: { who: "try" } }, limit: 1 });
  log(
    "list page",
    (await p.nextItems()).map((s) => s.sandboxId),
    p.hasNext,
  );
  // pty
  let out = "";
  const term = await sbx.pty.create({
    cols: 80,
    rows: 24,
    onData: (d) => (out += new TextDecoder().decode(d)),
  });
  await sbx.pty.sendInput(term.pid, new TextEncoder().encode("echo pty-$((6*7)); exit\n"));
  await term.wait().catch((e) => log("pty wait err", e.message));
  log("pty saw 42:", out.includes("pty-42"));
  // env + cwd
  const c = await sbx.commands.run("pwd; echo $FOO", { cwd: "/tmp", envs: { FOO: "bar" } });
  log("cmd", c.stdout.trim().split("\n"));
  // error
  try {
    await sbx.commands.run("exit 3");
  } catch (e) {
    log("exit error", e.constructor.name, e.exitCode);
  }
  await sbx.setTimeout(120_000);
  log("info", JSON.stringify(await sbx.getInfo()).slice(0, 300));
  await sbx
    .betaPause?.()
    .then(() => log("paused"))
    .catch((e) => log("pause err", e.message));
  const s2 = await Sandbox.connect(sbx.sandboxId);
  log("reconnected", (await s2.commands.run("cat /home/user/up.txt")).stdout);
} finally {
  log("kill", await sbx.kill());
}
