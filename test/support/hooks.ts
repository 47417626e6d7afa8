/**
 * Root hooks of every mocha run. faas-js-runtime installs a handler (the `death` package) that
 * answers an uncaught exception with `process.exit(0)`; inside a test run that would end mocha
 * early with a green exit code. This hook turns any exit before the run has finished into a
 * failure, so a crash can never pass as success.
 */
let finished = false;

process.on('exit', (code) => {
  if (!finished && code === 0) {
    console.error('The process exited before the test run finished (an uncaught exception in a function host?): failing the run.');
    process.exitCode = 1;
  }
});

export const mochaHooks = {
  afterAll(): void {
    finished = true;
  },
};
