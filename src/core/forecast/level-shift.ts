/**
 * Level shifts (a deploy that doubles traffic, a client that moves away): a series whose recent
 * days all differ from the same days one week earlier by the same factor has shifted level, and a
 * model fitted on the whole history would keep half-expecting the old level for weeks (the weekly
 * seasonal indices it has not seen since the shift still carry it). The history before the shift
 * is rescaled by the factor, so every model sees one level.
 *
 * Rule: for the last k = 1 … 7 days, each day's total is compared with the same day a week earlier.
 * The shift is the longest such run of days in which every ratio lies beyond ±SHIFT_RATIO on the
 * same side; it needs at least two full days after it (a single abnormal day is an anomaly, not a
 * new level) and the week before it has to be steady (within ±STEADY_RATIO of the week before that),
 * so growth and seasonality alone never qualify. Series with many zero hours (intermittent) and
 * histories under three weeks are left as they are: their day totals are too noisy to judge.
 *
 * When the deploys are known (the hours a new revision began serving), `levelShiftAtDeploy` judges
 * them first, newest first, on hours rather than days of evidence.
 */
import { median, robustScale } from './clean.js';
import { DAY_HOURS, WEEK_HOURS } from './models.js';

/** A day at least 35% above or below the same day a week earlier. */
const SHIFT_RATIO = 1.35;
/** The week before the shift within 15% of the week before it. */
const STEADY_RATIO = 1.15;
const MAX_SHIFT_DAYS = 7;
/** Days at the new level before it counts: a single abnormal day is an anomaly, not a new level. */
const MIN_SHIFT_DAYS = 2;
const INTERMITTENT_ZERO_SHARE = 0.3;

export interface LevelShift {
  /** First hour at the new level. */
  at: number;
  /** New level / old level. */
  factor: number;
  /** `deploy`: at a known deploy (levelShiftAtDeploy); `detected`: found in the data alone (detectLevelShift). */
  cause: 'deploy' | 'detected';
}

/** Hours after a deploy before its level is judged (half a day of the new revision's traffic). */
const MIN_DEPLOY_HOURS = 12;
/** A deploy's level counts as new when it is at least 20% above or below the same hours before. */
const DEPLOY_SHIFT_RATIO = 1.2;
/** Share of the hours since a deploy that have to lie on the side of the new level. */
const DEPLOY_CONSISTENCY = 0.8;

function sum(y: ArrayLike<number>, from: number, to: number): number {
  let s = 0;
  for (let t = Math.max(0, from); t < to; t++) s += y[t] ?? 0;
  return s;
}

/** The level shift of the last week of `y`, if there is one (see the module comment). */
export function detectLevelShift(y: ArrayLike<number>): LevelShift | null {
  const n = y.length;
  if (n < 3 * WEEK_HOURS) return null;
  let zeros = 0;
  for (let t = 0; t < n; t++) if (y[t] === 0) zeros++;
  if (zeros / n >= INTERMITTENT_ZERO_SHARE) return null;
  let side = 0;
  let days = 0;
  for (let k = 1; k <= MAX_SHIFT_DAYS; k++) {
    const end = n - (k - 1) * DAY_HOURS;
    const day = sum(y, end - DAY_HOURS, end);
    const weekBefore = sum(y, end - DAY_HOURS - WEEK_HOURS, end - WEEK_HOURS);
    if (weekBefore <= 0 || day <= 0) break;
    const ratio = day / weekBefore;
    const daySide = ratio >= SHIFT_RATIO ? 1 : ratio <= 1 / SHIFT_RATIO ? -1 : 0;
    if (daySide === 0 || (side !== 0 && daySide !== side)) break;
    side = daySide;
    days = k;
  }
  if (days < MIN_SHIFT_DAYS) return null;
  const at = n - days * DAY_HOURS;
  const steady = sum(y, at - WEEK_HOURS, at) / Math.max(Number.MIN_VALUE, sum(y, at - 2 * WEEK_HOURS, at - WEEK_HOURS));
  if (steady > STEADY_RATIO || steady < 1 / STEADY_RATIO) return null;
  const factor = sum(y, at, n) / sum(y, at - WEEK_HOURS, n - WEEK_HOURS);
  return { at, factor, cause: 'detected' };
}

/**
 * The level shift at a known deploy: `deploys` are the hours at which a new revision began serving.
 * Deploys with MIN_DEPLOY_HOURS to a week of hours after them are judged, newest first; the first
 * that qualifies is the shift. Each hour since the deploy is compared with the same hour one season
 * earlier (a week when the history reaches that far back, else a day) as a log ratio
 * log((y + 1) / (y₋ₛ + 1)), and so are the as many hours just before it (the control: how much such
 * ratios move when nothing happened). The deploy took a new level when
 * - the median ratio since the deploy, less the control's median (growth that was there before),
 *   is at least ±DEPLOY_SHIFT_RATIO;
 * - at least DEPLOY_CONSISTENCY of the hours since lie on that side: a burst or an outage of a few
 *   hours after a deploy (pods restarting, a bad release rolled back) is an incident, not a level;
 * - and it stands out from the control's noise: more than three standard errors of a median
 *   (1.2533 · σ / √k, σ the control's robust spread, k the hours since), so a noisy series does not
 *   shift on every deploy.
 * Medians make it robust to a few odd hours on either side. Intermittent series are left as they
 * are. The factor is exp(that median difference).
 */
export function levelShiftAtDeploy(y: ArrayLike<number>, deploys: readonly number[]): LevelShift | null {
  const n = y.length;
  let zeros = 0;
  for (let t = 0; t < n; t++) if (y[t] === 0) zeros++;
  if (n === 0 || zeros / n >= INTERMITTENT_ZERO_SHARE) return null;
  const judged = [...new Set(deploys)].filter((at) => Number.isInteger(at) && n - at >= MIN_DEPLOY_HOURS && n - at <= MAX_SHIFT_DAYS * DAY_HOURS).sort((a, b) => b - a);
  for (const at of judged) {
    const shift = judgeDeploy(y, at);
    if (shift) return shift;
  }
  return null;
}

function judgeDeploy(y: ArrayLike<number>, at: number): LevelShift | null {
  const k = y.length - at;
  // The hours since the deploy and the control before it, each with the same hours a season earlier.
  const season = at >= WEEK_HOURS + k && k <= WEEK_HOURS ? WEEK_HOURS : at >= DAY_HOURS + k && k <= DAY_HOURS ? DAY_HOURS : 0;
  if (season === 0) return null;
  const logRatio = (t: number): number => Math.log(((y[t] ?? 0) + 1) / ((y[t - season] ?? 0) + 1));
  const since = Array.from({ length: k }, (_, i) => logRatio(at + i));
  const control = Array.from({ length: k }, (_, i) => logRatio(at - k + i));
  const { center: base, sigma } = robustScale(control);
  const shift = median(since) - base;
  if (Math.abs(shift) < Math.log(DEPLOY_SHIFT_RATIO)) return null;
  const side = Math.sign(shift);
  const onSide = since.filter((r) => Math.sign(r - base) === side).length;
  if (onSide < DEPLOY_CONSISTENCY * k) return null;
  if (Math.abs(shift) <= (3 * 1.2533 * sigma) / Math.sqrt(k)) return null;
  return { at, factor: Math.exp(shift), cause: 'deploy' };
}

/** `y` with the hours before the shift multiplied by its factor (a copy). */
export function rescaleBeforeShift(y: ArrayLike<number>, shift: LevelShift): number[] {
  return Array.from(y, (v, t) => (t < shift.at ? v * shift.factor : v));
}
