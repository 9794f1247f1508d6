/**
 * The HTTP gateway: the public API of this folder.
 */
export {
  buildGateway,
  errorBody,
  REQUEST_ID_HEADER,
  type GatewayApp,
  type GatewayConfig,
  type GatewayOptions,
} from './app.js';
export {
  gatewayBanner,
  registerGatewayCommand,
  runGatewayCommand,
  serveEmbeddedGateway,
  type GatewayCommandOptions,
} from './cli.js';
export { GatewayErrorCode, HTTP_STATUS, toHttpError, type HttpError } from './errors.js';
export { GatewayMetrics, gatewayMetrics } from './metrics.js';
export {
  createReadyCheck,
  type CheckResult,
  type ReadyCheck,
  type ReadyCheckOptions,
  type ReadyReport,
} from './ready.js';
export { gatewaySchemas, type GatewaySchemas, type SchemaLimits } from './schemas.js';
export { listenGateway, type ListeningGateway } from './server.js';
