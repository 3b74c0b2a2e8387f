// Name resolution for a sandbox domain on one machine, for Node programs only:
//   NODE_OPTIONS=--import=<repo>/scripts/resolve-local-domain.mjs
// resolves `<domain>` and every `*.<domain>` to WRENN_RESOLVE_ADDRESS (default 127.0.0.1),
// where <domain> is WRENN_RESOLVE_DOMAIN, else E2B_DOMAIN without its port. Everything else
// resolves as usual. A wildcard DNS record (or dnsmasq `address=/<domain>/<ip>`) does the
// same for every program; this is for a laptop or a test machine without one.
import dns from "node:dns";

const domain = (process.env.WRENN_RESOLVE_DOMAIN || process.env.E2B_DOMAIN || "")
  .replace(/:\d+$/, "")
  .toLowerCase();
const address = process.env.WRENN_RESOLVE_ADDRESS || "127.0.0.1";
const family = address.includes(":") ? 6 : 4;

if (domain) {
  const systemLookup = dns.lookup;
  const ours = (hostname) => {
    const name = String(hostname).toLowerCase().replace(/\.$/, "");
    return name === domain || name.endsWith(`.${domain}`);
  };
  dns.lookup = function lookup(hostname, options, callback) {
    const cb = typeof options === "function" ? options : callback;
    const opts =
      typeof options === "function"
        ? {}
        : typeof options === "number"
          ? { family: options }
          : (options ?? {});
    if (!ours(hostname)) return systemLookup.call(this, hostname, options, callback);
    if (opts.all) process.nextTick(cb, null, [{ address, family }]);
    else process.nextTick(cb, null, address, family);
    return {};
  };
}
