import { HttpError } from "./http-route.js";

interface Coding {
  name: string;
  q: number;
}

function parseCodings(header: string): Coding[] {
  return header
    .split(",")
    .map((part) => {
      const [rawName = "", ...params] = part.split(";");
      let q = 1;
      for (const param of params) {
        const [k, v] = param.trim().split("=");
        if (k?.toLowerCase() === "q" && v !== undefined && !Number.isNaN(Number(v))) q = Number(v);
      }
      return { name: rawName.trim().toLowerCase(), q };
    })
    .filter((c) => c.name !== "");
}

/** RFC 7231 5.3.4: identity is acceptable unless `identity;q=0`, or `*;q=0` without an identity entry above 0. */
export function isIdentityAcceptable(header: string | undefined): boolean {
  if (!header) return true;
  const codings = parseCodings(header);
  const identity = codings.find((c) => c.name === "identity");
  if (identity) return identity.q > 0;
  return !codings.some((c) => c.name === "*" && c.q === 0);
}

/**
 * The response coding for a download: "gzip" or "identity", by quality, as E2B's envd
 * chooses. 406 when the client rejects identity and accepts nothing we can produce.
 */
export function chooseEncoding(header: string | undefined): "gzip" | "identity" {
  if (!header) return "identity";
  const identityOk = isIdentityAcceptable(header);
  const codings = parseCodings(header).sort((a, b) => b.q - a.q);
  for (const c of codings) {
    if (c.q === 0) continue;
    if (c.name === "identity") return "identity";
    if (c.name === "gzip") return "gzip";
    if (c.name === "*") return identityOk ? "identity" : "gzip";
  }
  if (identityOk) return "identity";
  throw new HttpError(406, "no acceptable encoding found, supported: [gzip]");
}

/** Content-Encoding of an upload body: identity or gzip, else 400. */
export function parseContentEncoding(header: string | undefined): "gzip" | "identity" {
  if (!header) return "identity";
  const name = (header.split(";")[0] ?? "").trim().toLowerCase();
  if (name === "" || name === "identity") return "identity";
  if (name === "gzip") return "gzip";
  throw new HttpError(400, `unsupported Content-Encoding: ${header}, supported: [gzip]`);
}
