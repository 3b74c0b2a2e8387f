import { z } from "zod";
import { MemberRoleSchema } from "./admin-schemas.js";
import { TimestampSchema } from "./fields.js";

/** Bodies and responses of /v1/auth (browser sign-in) and /v1/team (members, invitations). */

export const PasswordSchema = z.string().min(10).max(256).describe("10-256 characters");

export const SignupBodySchema = z.object({
  email: z.email().max(254),
  password: PasswordSchema,
  name: z.string().max(128).optional(),
});
export type SignupBody = z.input<typeof SignupBodySchema>;

/** Sign-in takes any password string: length rules apply when one is set, not when guessed. */
export const SigninBodySchema = z.object({
  email: z.string().min(1).max(254),
  password: z.string().min(1).max(1024),
});
export type SigninBody = z.input<typeof SigninBodySchema>;

export const SwitchTeamBodySchema = z.object({ teamId: z.string().min(1).max(128) });

export const UserSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  created_at: TimestampSchema,
});
export type UserView = z.infer<typeof UserSchema>;

export const SessionTeamSchema = z.object({
  id: z.string(),
  name: z.string(),
  is_admin: z.boolean(),
  role: MemberRoleSchema,
});

/** The signed-in user, the team the session acts for, and the CSRF token state changes need. */
export const AuthSessionSchema = z.object({
  user: UserSchema,
  team: SessionTeamSchema,
  role: MemberRoleSchema,
  teams: z.array(SessionTeamSchema),
  csrfToken: z.string().describe("send as the x-csrf-token header on POST/PUT/PATCH/DELETE"),
});
export type AuthSessionView = z.infer<typeof AuthSessionSchema>;

export const InvitationCreateBodySchema = z.object({
  email: z.email().max(254),
  role: MemberRoleSchema.default("member"),
});

export const InvitationSchema = z.object({
  id: z.string(),
  email: z.string(),
  role: MemberRoleSchema,
  invited_by: z.string().nullable(),
  created_at: TimestampSchema,
  expires_at: TimestampSchema,
  accepted_at: TimestampSchema.nullable(),
});
export type InvitationView = z.infer<typeof InvitationSchema>;

/** A new invitation: the accept token (and a link carrying it) are in this response only. */
export const CreatedInvitationSchema = InvitationSchema.extend({
  token: z.string(),
  accept_url: z.string(),
});

export const InvitationAcceptBodySchema = z.object({
  token: z.string().min(1).max(256),
  /** Without a session: the new account's password (the invitation's email becomes its email). */
  password: PasswordSchema.optional(),
  name: z.string().max(128).optional(),
});

export const MemberRoleBodySchema = z.object({ role: MemberRoleSchema });
export const UserIdParamsSchema = z.object({ userId: z.string().min(1).max(128) });
