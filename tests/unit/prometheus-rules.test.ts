/**
 * The alerting and recording rules in ops/prometheus pass promtool's checks and their unit tests
 * (ops/prometheus/coupon-service.rules.test.yml). The promtool checks need Debian's prometheus
 * package: without it they are skipped with a line at the end of the run (failed with CI=true).
 */
import path from 'node:path';
import { metricNamesIn, readRules, run, RULES_FILE } from '../support/prometheus';
import { requiresTool } from '../support/required-tools';

const promtool = requiresTool('promtool', 'prometheus');

promtool.describe('Prometheus rules checked by promtool', () => {
  test('promtool finds the rules file valid', () => {
    expect(run(promtool.path(), ['check', 'rules', RULES_FILE])).toMatch(/SUCCESS: \d+ rules found/);
  });

  test('every alert fires, waits and resolves as its promtool unit tests say', () => {
    const output = run(promtool.path(), ['test', 'rules', 'coupon-service.rules.test.yml'], path.dirname(RULES_FILE));
    expect(output).toMatch(/SUCCESS/);
  });
});

describe('Prometheus rules', () => {
  test('the rules cover what an operator must hear about, each alert with a for: duration and a severity', () => {
    const rules = readRules().groups.flatMap((group) => group.rules);
    const alerts = rules.filter((rule) => rule.alert);
    for (const metric of [
      'coupon_claim_duration_seconds_bucket',
      'coupon_claims_total',
      'coupon_requests_shed_total',
      'coupon_dependency_errors_total',
      'coupon_dependency_up',
      'nodejs_eventloop_lag_p99_seconds',
      'coupon_reconcile_repairs_total',
      'coupon_reconcile_oldest_pending_seconds',
      'coupon_issuance_batch_write_seconds_bucket',
    ]) {
      const readBy = alerts.filter((alert) => {
        const names = metricNamesIn(alert.expr);
        const recorded = rules.filter((rule) => rule.record && names.includes(rule.record)).flatMap((rule) => metricNamesIn(rule.expr));
        return [...names, ...recorded].includes(metric);
      });
      expect({ metric, alerts: readBy.length > 0 }).toEqual({ metric, alerts: true });
    }
    expect(rules.map((rule) => rule.expr).join('\n')).toMatch(/outcome="SERVICE_UNAVAILABLE"/);
    for (const alert of alerts) expect({ alert: alert.alert, for: Boolean(alert.for) }).toEqual({ alert: alert.alert, for: true });
  });
});
