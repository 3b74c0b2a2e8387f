/** Guest paths as the file browser handles them: absolute, `/`-separated, no trailing slash. */

export const HOME = "/home/user";

/** `a//b/` → `/a/b`; relative paths are taken from `/`. */
export function normalize(path: string): string {
  const parts = path.split("/").filter((p) => p && p !== ".");
  const out: string[] = [];
  for (const p of parts) {
    if (p === "..") out.pop();
    else out.push(p);
  }
  return `/${out.join("/")}`;
}

export const join = (dir: string, name: string): string => normalize(`${dir}/${name}`);

export const parent = (path: string): string => normalize(`${path}/..`);
