import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, isAbsolute, join, resolve } from "node:path";

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where `cmd` would be found, as execvp searches: a name with a slash is taken relative
 * to `cwd`, a bare name is looked up in `pathVar`. Checked before spawning so a missing
 * command is the same clear error whichever user it would run as.
 */
export async function findExecutable(cmd: string, cwd: string, pathVar: string): Promise<string | undefined> {
  if (cmd.includes("/")) {
    const path = isAbsolute(cmd) ? cmd : resolve(cwd, cmd);
    return (await isExecutableFile(path)) ? path : undefined;
  }
  for (const dir of pathVar.split(delimiter)) {
    const path = join(dir === "" ? cwd : resolve(cwd, dir), cmd);
    if (await isExecutableFile(path)) return path;
  }
  return undefined;
}
