/**
 * Which signed bundles a device may switch to. A signature says who made a bundle; the signed
 * `release` section says for what: a version (no switching to an older one), a device group (a
 * bundle for the ultrasound kiosks is not for the carts) and an expiry (a bundle signed for a trial
 * does not stay installable for ever). All three live in manifest.json, so they are covered by
 * manifest.sig: editing any of them breaks the signature.
 *
 * Bundles signed before these fields existed have no `release` section. They are treated as
 * version 0 (so once a device runs a versioned bundle, no unversioned one can replace it), bound
 * to no group (installable on any device) and never expiring.
 */
import { BundleError } from './errors.js';
import { GROUP_PATTERN, MANIFEST_FILE, VERSION_PATTERN, parseIsoTime, type BundleManifest, type ReleaseSection } from './format.js';
import { compareVersions } from '../../util/versions.js';

/** The version of a bundle without a `release` section. */
export const LEGACY_VERSION = '0';

/** Why a bundle was refused; carried in BundleError.code and the fault event. */
export type PolicyRefusal = 'downgrade' | 'wrong-group' | 'expired';

export function releaseVersion(manifest: BundleManifest): string {
  return manifest.release?.version ?? LEGACY_VERSION;
}


export interface PolicyContext {
  /** The device's group (config device.group); undefined: none configured. */
  readonly deviceGroup: string | undefined;
  readonly now: Date;
  /** The bundle serving now, when there is one. */
  readonly installed: BundleManifest | undefined;
  /**
   * 'install': a bundle from a path or URL (version must not go down unless allowDowngrade);
   * 'rollback': the previous bundle recorded on this device (it may be older: that is its point).
   */
  readonly operation: 'install' | 'rollback';
  /** Local operator's `bundle install --allow-downgrade`; never set from MQTT. */
  readonly allowDowngrade?: boolean;
}

function refuse(code: PolicyRefusal, reason: string): never {
  throw new BundleError('policy', reason, MANIFEST_FILE, { code });
}

/** Throws BundleError step 'policy' (code downgrade / wrong-group / expired) when `next` may not be switched to. */
export function checkReleasePolicy(next: BundleManifest, ctx: PolicyContext): void {
  const release: ReleaseSection | undefined = next.release;
  if (release?.notAfter !== undefined && ctx.now.getTime() > Date.parse(release.notAfter)) {
    refuse('expired', `bundle expired at ${release.notAfter} (device clock ${ctx.now.toISOString()}); ask the signer for a new bundle`);
  }
  if (release?.group !== undefined && release.group !== ctx.deviceGroup) {
    refuse(
      'wrong-group',
      ctx.deviceGroup === undefined
        ? `bundle is bound to device group "${release.group}" and this device has no group (config device.group)`
        : `bundle is bound to device group "${release.group}", this device is in "${ctx.deviceGroup}"`,
    );
  }
  if (ctx.operation === 'install' && ctx.installed && !ctx.allowDowngrade) {
    const have = releaseVersion(ctx.installed);
    const want = releaseVersion(next);
    if (compareVersions(want, have) < 0) {
      refuse(
        'downgrade',
        `bundle version ${want}${release ? '' : ' (unversioned)'} is older than the installed ${have}; ` +
          'a device only goes back through reload-model {rollback: true} (to its recorded previous bundle) or a local `bundle install --allow-downgrade`',
      );
    }
  }
}

/** Checks a sign request's release fields with the same rules a device parses them with. */
export function makeReleaseSection(fields: { version?: string; group?: string; notAfter?: string }, now: Date): ReleaseSection | undefined {
  const { version, group, notAfter } = fields;
  if (version === undefined && group === undefined && notAfter === undefined) return undefined;
  if (version === undefined) throw new Error('a bundle with --group or --expires needs --version too');
  if (!VERSION_PATTERN.test(version)) throw new Error(`version ${JSON.stringify(version)} is not 1 to 4 dot-separated integers (e.g. 2.1.0)`);
  if (group !== undefined && !GROUP_PATTERN.test(group)) throw new Error(`group ${JSON.stringify(group)} is not 1 to 64 of [A-Za-z0-9._-]`);
  let expiry: string | undefined;
  if (notAfter !== undefined) {
    const ms = parseIsoTime(notAfter);
    if (ms === undefined) throw new Error(`expiry ${JSON.stringify(notAfter)} is not an ISO 8601 date or UTC/offset time (e.g. 2027-06-30 or 2027-06-30T12:00:00Z)`);
    if (ms <= now.getTime()) throw new Error(`expiry ${notAfter} is already past (now ${now.toISOString()})`);
    expiry = new Date(ms).toISOString();
  }
  return { version, ...(group !== undefined ? { group } : {}), ...(expiry !== undefined ? { notAfter: expiry } : {}) };
}
