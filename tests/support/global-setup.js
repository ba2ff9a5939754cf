/** Jest globalSetup: see ./skipped-suites.js. */
module.exports = async () => {
  require('./skipped-suites').startRun();
};
