export {
  clientErrorHandler,
  clientErrorProblem,
  createRouteIndex,
  frameworkErrors,
  installProblemHandling,
  PROBLEM_CONTENT_TYPE,
  problemResponses,
  type RouteIndex,
  requireHost,
  sendProblem,
  toProblem,
} from './handler';
export { ProblemError } from './problem-error';
