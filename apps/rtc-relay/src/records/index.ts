export {
  createRecordPipeline,
  type OnOutcome,
  type Outcome,
  RECORD_JOB_OPTIONS,
  RECORD_JOBS_PER_ADD,
  type RecordPipeline,
  type RecordPipelineOptions,
  type RecordPipelineStats,
} from './pipeline';
export {
  createSubjectQuotas,
  createTokenBucket,
  type QuotaOptions,
  type SubjectQuotas,
  type TokenBucket,
  takeFromAll,
} from './quota';
export {
  checkMessageSize,
  checkScreened,
  newRecordId,
  type RecordContext,
  type Screened,
  type Screening,
  screenMessage,
  type Validation,
  validateMessage,
} from './validate';
