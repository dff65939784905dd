/**
 * Test-worker side of the emulators: the shared instances from the global setup, or private
 * ones for this file when the run has no global setup.
 */
import { afterAll, inject } from 'vitest';
import { type EmulatorEndpoints, startEmulators } from './emulators.js';

/**
 * The emulators for this test file: the shared ones from the global setup, or private
 * ones started now (stopped after the file). Call at module level or in `beforeAll`.
 *
 * @example
 * const emulators = await useEmulators();
 * const store = openDynamoCatalogStore({ tableName, client: dynamoClientFor(emulators.dynamoEndpoint) });
 */
export async function useEmulators(): Promise<EmulatorEndpoints> {
  const shared = inject('airlockEmulators');
  if (shared) return shared;
  const own = await startEmulators();
  afterAll(() => own.stop());
  return own;
}
