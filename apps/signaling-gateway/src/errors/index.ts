export {
  clientErrorHandler,
  createRouteIndex,
  frameworkErrors,
  installProblemHandling,
  PROBLEM_CONTENT_TYPE,
  problemResponses,
  type RouteIndex,
  sendProblem,
  toProblem,
} from './handler';
export { ProblemError } from './problem-error';
