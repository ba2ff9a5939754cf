/**
 * The alerting and recording rules in ops/prometheus pass promtool's checks and their unit tests
 * (ops/prometheus/coupon-service.rules.test.yml). Needs promtool (Debian's prometheus package);
 * without it this fails with the install command, it does not skip.
 */
import path from 'node:path';
import { metricNamesIn, readRules, requireTool, run, RULES_FILE } from '../support/prometheus';

describe('Prometheus rules', () => {
  test('promtool finds the rules file valid', () => {
    const promtool = requireTool('promtool');
    expect(run(promtool, ['check', 'rules', RULES_FILE])).toMatch(/SUCCESS: \d+ rules found/);
  });

  test('every alert fires, waits and resolves as its promtool unit tests say', () => {
    const promtool = requireTool('promtool');
    const output = run(promtool, ['test', 'rules', 'coupon-service.rules.test.yml'], path.dirname(RULES_FILE));
    expect(output).toMatch(/SUCCESS/);
  });

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
