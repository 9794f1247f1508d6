export { ModelRegistry, checkSlot, registryBucketName, type RegistryEntry } from './registry.js';
