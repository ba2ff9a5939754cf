/** Jest globalTeardown: see ./skipped-suites.js. */
module.exports = async () => {
  require('./skipped-suites').endRun();
};
