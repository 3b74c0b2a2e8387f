import { type LinuxUser, lookupUser, UnknownUserError } from "../users.js";
import { HttpError } from "./http-route.js";

/** The user a /files request acts as: ?username=, else the default. Unknown is 401, as E2B. */
export async function userForFileRequest(url: URL, defaultUser: string): Promise<LinuxUser> {
  const name = url.searchParams.get("username") ?? defaultUser;
  try {
    return await lookupUser(name);
  } catch (err) {
    if (err instanceof UnknownUserError) {
      throw new HttpError(401, `error looking up user '${name}': user: unknown user ${name}`, { cause: err });
    }
    throw err;
  }
}
