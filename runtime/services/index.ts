export {
  MicroService,
  SERVICE_API_PREFIX,
  SERVICE_ERROR_CODE_HEADER,
  SERVICE_ERROR_HEADER,
  ServiceResponseType,
  ServiceVerb,
  controlSubject,
  newServiceId,
} from './micro.js';
export type {
  EndpointInfo,
  EndpointRecorder,
  EndpointStats,
  MicroEndpoint,
  MicroServiceConfig,
  ServiceIdentity,
  ServiceInfo,
  ServiceStats,
  StatsData,
} from './micro.js';
export { discoverServices } from './discover.js';
export type { DiscoverOptions, DiscoverResult } from './discover.js';
