import { newSandboxId, randomId } from "@wrenn/shared";

/** Ids of control-plane records: a short type prefix and a random DNS-safe body. */
export const newTeamId = (): string => `team_${randomId(16)}`;
export const newUserId = (): string => `usr_${randomId(16)}`;
export const newApiKeyId = (): string => `key_${randomId(16)}`;
export const newHostId = (): string => `host_${randomId(16)}`;
export const newRegistrationTokenId = (): string => `hrt_${randomId(16)}`;
export const newTemplateId = (): string => `tpl_${randomId(16)}`;
export const newBuildId = (): string => `bld_${randomId(16)}`;
export const newAuditLogId = (): string => `aud_${randomId(20)}`;
export const newChannelId = (): string => `ch_${randomId(16)}`;
export const newDeliveryId = (): string => `dlv_${randomId(20)}`;
export const newEventId = (): string => `evt_${randomId(20)}`;
export { newSandboxId };
/** Volume ids name directories and NFS exports on the host: lowercase letters, digits and `-` only. */
export const newVolumeId = (): string => `vol-${randomId(16)}`;
export const newInvitationId = (): string => `inv_${randomId(16)}`;
export const newReplicaId = (): string => `rep_${randomId(12)}`;
