import { Code, ConnectError } from "@connectrpc/connect";
import { type LinuxUser, lookupUser, UnknownUserError, usernameFromAuthorization } from "./users.js";

/**
 * The account a Connect request acts as: `Authorization: Basic base64(user:)`, else the
 * current default user. An unknown name is Unauthenticated, as in E2B's envd.
 */
export async function userForRequest(headers: Headers, defaultUser: string): Promise<LinuxUser> {
  const name = usernameFromAuthorization(headers.get("authorization"), defaultUser);
  try {
    return await lookupUser(name);
  } catch (err) {
    if (err instanceof UnknownUserError) {
      throw new ConnectError(`invalid username: '${name}'`, Code.Unauthenticated, undefined, undefined, err);
    }
    throw new ConnectError(`error looking up user '${name}'`, Code.Internal, undefined, undefined, err);
  }
}
