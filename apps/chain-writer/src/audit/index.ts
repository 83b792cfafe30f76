export {
  type AnchoredHead,
  AUDIT_RELAY_ID,
  AUDIT_SESSION_ID,
  AUDIT_SUBJECT,
  AUDIT_TOPIC,
  anchorAuditHead,
  auditAnchorRecordId,
  createAuditAnchorer,
} from './anchor';
export { type AuditVerification, type VerifyAuditDeps, verifyAudit } from './verify';
export { AUDIT_DETAILS_MAX_BYTES, auditEventProblem, createAuditWorker } from './worker';
