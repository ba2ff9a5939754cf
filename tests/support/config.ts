/** The one line a configuration mistake produces, for the configuration unit tests. */
import { ConfigError, loadConfig } from '../../src/config';

export function configErrorOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a configuration error');
}
