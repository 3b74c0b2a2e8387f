import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";

const errorBody = async (res: Response) => (await res.json()) as { code: number; message: string };

describe("envd /files over plain HTTP", () => {
  let fx: EnvdFixture;
  const scratch = (...parts: string[]) => join(fx.workDir, ...parts);
  const filesUrl = (params: Record<string, string>) => `${fx.url}/files?${new URLSearchParams(params)}`;

  beforeAll(async () => {
    fx = await startEnvd();
  });
  afterAll(() => fx.close());

  it("downloads with length, disposition and byte ranges", async () => {
    writeFileSync(scratch("range.txt"), "0123456789");
    const full = await fetch(filesUrl({ path: scratch("range.txt") }), {
      headers: { "accept-encoding": "identity" },
    });
    expect(full.status).toBe(200);
    expect(full.headers.get("content-length")).toBe("10");
    expect(full.headers.get("accept-ranges")).toBe("bytes");
    expect(full.headers.get("content-disposition")).toContain('filename="range.txt"');
    expect(await full.text()).toBe("0123456789");

    const cases: [string, number, string, string | null][] = [
      ["bytes=2-5", 206, "2345", "bytes 2-5/10"],
      ["bytes=7-", 206, "789", "bytes 7-9/10"],
      ["bytes=-3", 206, "789", "bytes 7-9/10"],
      ["bytes=8-100", 206, "89", "bytes 8-9/10"],
    ];
    for (const [range, status, body, contentRange] of cases) {
      const res = await fetch(filesUrl({ path: scratch("range.txt") }), { headers: { range } });
      expect([range, res.status]).toEqual([range, status]);
      expect(res.headers.get("content-range")).toBe(contentRange);
      expect(await res.text()).toBe(body);
    }
    for (const range of ["bytes=20-", "bytes=5-2", "pages=1-2", "bytes=abc"]) {
      const res = await fetch(filesUrl({ path: scratch("range.txt") }), { headers: { range } });
      expect([range, res.status]).toEqual([range, 416]);
      expect(res.headers.get("content-range")).toBe("bytes */10");
      expect(await res.json()).toMatchObject({ code: 416 });
    }
  });

  it("gzips downloads when asked, and answers 406 when nothing acceptable is left", async () => {
    const text = "compressible ".repeat(1000);
    writeFileSync(scratch("gz.txt"), text);
    // node:http, unlike fetch, does not decompress: check the bytes on the wire.
    const raw = await new Promise<{ status: number; encoding: string | undefined; body: Buffer }>(
      (resolve, reject) => {
        request(filesUrl({ path: scratch("gz.txt") }), { headers: { "accept-encoding": "gzip" } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              encoding: res.headers["content-encoding"],
              body: Buffer.concat(chunks),
            }),
          );
        })
          .on("error", reject)
          .end();
      },
    );
    expect(raw.status).toBe(200);
    expect(raw.encoding).toBe("gzip");
    expect(raw.body.length).toBeLessThan(text.length / 10);
    expect(gunzipSync(raw.body).toString()).toBe(text);

    const refused = await fetch(filesUrl({ path: scratch("gz.txt") }), {
      headers: { "accept-encoding": "br, identity;q=0" },
    });
    expect(refused.status).toBe(406);
  });

  it("sends data that does not compress as identity even when gzip is accepted, unless identity is refused", async () => {
    const random = randomBytes(1024 * 1024);
    writeFileSync(scratch("random.bin"), random);
    const wire = (acceptEncoding: string) =>
      new Promise<{ encoding: string | undefined; length: string | undefined; body: Buffer }>(
        (resolve, reject) => {
          request(
            filesUrl({ path: scratch("random.bin") }),
            { headers: { "accept-encoding": acceptEncoding } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (c: Buffer) => chunks.push(c));
              res.on("end", () =>
                resolve({
                  encoding: res.headers["content-encoding"],
                  length: res.headers["content-length"],
                  body: Buffer.concat(chunks),
                }),
              );
            },
          )
            .on("error", reject)
            .end();
        },
      );
    const plain = await wire("gzip, deflate");
    expect(plain.encoding).toBeUndefined();
    expect(plain.length).toBe(String(random.length));
    expect(plain.body.equals(random)).toBe(true);
    const forced = await wire("gzip, identity;q=0");
    expect(forced.encoding).toBe("gzip");
    expect(gunzipSync(forced.body).equals(random)).toBe(true);
  });

  it("answers E2B's error bodies for missing paths, directories and unknown users", async () => {
    const missing = await fetch(filesUrl({ path: scratch("missing.txt") }));
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      code: 404,
      message: `path '${scratch("missing.txt")}' does not exist`,
    });

    const dir = await fetch(filesUrl({ path: fx.workDir }));
    expect(dir.status).toBe(400);
    expect(await dir.json()).toEqual({ code: 400, message: `path '${fx.workDir}' is a directory` });

    const user = await fetch(filesUrl({ path: scratch("x"), username: "nobody-such" }));
    expect(user.status).toBe(401);
    expect(await user.json()).toMatchObject({ code: 401, message: expect.stringContaining("nobody-such") });

    const tilde = await fetch(filesUrl({ path: "~other/x" }));
    expect(tilde.status).toBe(400);
  });

  it("uploads octet-stream bodies, gzip-encoded ones, and multipart with several files", async () => {
    const raw = await fetch(filesUrl({ path: scratch("up", "raw.bin") }), {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: Buffer.from([1, 2, 3]),
    });
    expect(raw.status).toBe(200);
    expect(await raw.json()).toEqual([{ path: scratch("up", "raw.bin"), name: "raw.bin", type: "file" }]);
    expect([...readFileSync(scratch("up", "raw.bin"))]).toEqual([1, 2, 3]);

    const gz = await fetch(filesUrl({ path: scratch("up", "gz.txt") }), {
      method: "POST",
      headers: { "content-type": "application/octet-stream", "content-encoding": "gzip" },
      body: gzipSync("unzipped on arrival"),
    });
    expect(gz.status).toBe(200);
    expect(readFileSync(scratch("up", "gz.txt"), "utf8")).toBe("unzipped on arrival");

    const form = new FormData();
    form.append("file", new Blob(["one"]), scratch("up", "m", "one.txt"));
    form.append("ignored", "not a file field");
    form.append("file", new Blob(["two"]), scratch("up", "m", "dir", "two.txt"));
    const multi = await fetch(`${fx.url}/files`, { method: "POST", body: form });
    expect(multi.status).toBe(200);
    expect(((await multi.json()) as { path: string }[]).map((e) => e.path)).toEqual([
      scratch("up", "m", "one.txt"),
      scratch("up", "m", "dir", "two.txt"),
    ]);
    expect(readFileSync(scratch("up", "m", "dir", "two.txt"), "utf8")).toBe("two");
  });

  it("refuses bad uploads with 400 and E2B's messages", async () => {
    mkdirSync(scratch("bad", "dir"), { recursive: true });
    const post = (params: Record<string, string>, init: RequestInit) =>
      fetch(filesUrl(params), { method: "POST", ...init });

    const noPath = await post({}, { headers: { "content-type": "application/octet-stream" }, body: "x" });
    expect([noPath.status, (await errorBody(noPath)).message]).toEqual([
      400,
      "path query parameter is required for raw body upload",
    ]);

    const onDir = await post(
      { path: scratch("bad", "dir") },
      { headers: { "content-type": "application/octet-stream" }, body: "x" },
    );
    expect([onDir.status, (await errorBody(onDir)).message]).toEqual([
      400,
      `path is a directory: ${scratch("bad", "dir")}`,
    ]);

    const wrongType = await post(
      { path: scratch("bad", "t") },
      { headers: { "content-type": "text/plain" }, body: "x" },
    );
    expect(wrongType.status).toBe(400);

    const badGzip = await post(
      { path: scratch("bad", "g") },
      {
        headers: { "content-type": "application/octet-stream", "content-encoding": "gzip" },
        body: "not gzip",
      },
    );
    expect(badGzip.status).toBe(400);

    const badEncoding = await post(
      { path: scratch("bad", "b") },
      { headers: { "content-type": "application/octet-stream", "content-encoding": "br" }, body: "x" },
    );
    expect(badEncoding.status).toBe(400);

    const brokenMultipart = await post(
      {},
      { headers: { "content-type": "multipart/form-data" }, body: "--x\r\nnonsense" },
    );
    expect(brokenMultipart.status).toBe(400);

    const form = new FormData();
    form.append("file", new Blob(["1"]), "a.txt");
    form.append("file", new Blob(["2"]), "b.txt");
    const samePath = await fetch(filesUrl({ path: scratch("bad", "same.txt") }), {
      method: "POST",
      body: form,
    });
    expect(samePath.status).toBe(400);
    expect((await errorBody(samePath)).message).toContain(
      "you cannot upload multiple files to the same path",
    );
    expect(readFileSync(scratch("bad", "same.txt"), "utf8")).toBe("1");

    const meta = await post(
      { path: scratch("bad", "m") },
      { headers: { "content-type": "application/octet-stream", "x-metadata-k": "a\tb" }, body: "x" },
    );
    // Metadata values must be printable US-ASCII (a tab is not).
    expect(meta.status).toBe(400);

    // The server is still healthy after all of that.
    expect((await fetch(`${fx.url}/health`)).status).toBe(204);
  });

  it("keeps the file's mode bits and size after an overwrite via upload", async () => {
    writeFileSync(scratch("keep.sh"), "#!/bin/sh\necho long old content\n", { mode: 0o755 });
    const res = await fetch(filesUrl({ path: scratch("keep.sh") }), {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: "#!/bin/sh\n",
    });
    expect(res.status).toBe(200);
    const st = statSync(scratch("keep.sh"));
    expect([st.mode & 0o777, st.size]).toEqual([0o755, 10]);
  });
});
