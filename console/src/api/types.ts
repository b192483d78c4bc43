// Names for the API's shapes, generated from /api/openapi.json into schema.d.ts (`npm run schema`).
import type { Schemas } from './client';

export type Role = 'viewer' | 'member' | 'admin' | 'owner';
export type Tenant = Schemas['TenantOut'];
export type Segment = Schemas['SegmentOut'];
export type SegmentList = Schemas['SegmentList'];
export type ComputeStatus = Schemas['ComputeStatusOut'];
export type Members = Schemas['MembersOut'];
export type Preview = Schemas['PreviewOut'];
export type LookalikePreview = Schemas['LookalikePreviewOut'];
export type AiDraft = Schemas['DraftOut'];
export type Export = Schemas['ExportOut'];
export type VersionList = Schemas['VersionList'];
export type SandboxResult = Schemas['SandboxResult'];
export type IngestionStats = Schemas['IngestionStats'];
export type Health = Schemas['Health'];
export type IngestionErrors = Schemas['IngestionErrorList'];
export type ApiKey = Schemas['ApiKeyOut'];
export type ApiKeyCreated = Schemas['ApiKeyCreated'];
export type TeamMember = Schemas['segops__tenancy__api__MemberOut'];
export type Connector = Schemas['ConnectorOut'];
export type SyncList = Schemas['SyncList'];
export type ShopifyIntegration = Schemas['ShopifyIntegrationOut'];
export type Plan = Schemas['PlanOut'];
export type Membership = Schemas['MembershipOut'];
export type PropertyKeys = Schemas['PropertyKeys'];
export type Usage = Schemas['UsageReport'];

export const ROLE_RANK: Record<Role, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };

export function atLeast(role: Role | null | undefined, minimum: Role): boolean {
  return role != null && ROLE_RANK[role] >= ROLE_RANK[minimum];
}
export type InvitationPreview = Schemas['InvitationPreview'];
export type Joined = Schemas['Joined'];
export type InvitationList = Schemas['InvitationList'];
export type SignedIn = Schemas['SignedIn'];
