export { SegOpsClient } from './client.js';
export type { IdentifyParams, Properties, SegOpsClientOptions, TrackParams } from './client.js';
export { SegOpsClosedError, SegOpsError } from './errors.js';
export type { SegOpsErrorInit, SegOpsErrorKind } from './errors.js';
