/**
 * Whether to offer turning off rust-analyzer's check on save. With it on, rust-analyzer runs
 * `cargo check` after each save and shows cargo's diagnostics, and buildd shows the same ones
 * from its own build: every error twice. The extension offers, once per workspace and never
 * silently, to turn rust-analyzer's off. This module holds the decision, without `vscode`.
 */

export const RUST_ANALYZER_ID = 'rust-lang.rust-analyzer';

/** The key in `workspaceState` that remembers the offer was made in this workspace. */
export const OFFERED_KEY = 'buildd.offeredToDisableCheckOnSave';

/**
 * Whether rust-analyzer's check on save is on, from the effective value of
 * `rust-analyzer.checkOnSave`: a boolean since rust-analyzer 2023-03; before that an object
 * `{ enable: boolean }` (`rust-analyzer.checkOnSave.enable`). Unset means rust-analyzer's
 * default, which is on.
 */
export function checkOnSaveEnabled(value: unknown): boolean {
    if (typeof value === 'boolean') {
        return value;
    }
    if (typeof value === 'object' && value !== null && 'enable' in value) {
        return value.enable !== false;
    }
    return true;
}

export interface OfferInputs {
    /** Whether the rust-analyzer extension is installed. */
    rustAnalyzerInstalled: boolean;
    /** The effective `rust-analyzer.checkOnSave`. */
    checkOnSave: unknown;
    /** Whether the offer was already made in this workspace. */
    alreadyOffered: boolean;
    /** `buildd.rustAnalyzer.offerToDisableCheckOnSave`. */
    offerEnabled: boolean;
}

export function shouldOfferToDisableCheckOnSave(inputs: OfferInputs): boolean {
    return inputs.offerEnabled
        && inputs.rustAnalyzerInstalled
        && !inputs.alreadyOffered
        && checkOnSaveEnabled(inputs.checkOnSave);
}

export const OFFER_MESSAGE = 'rust-analyzer runs cargo check on save, and buildd builds after every save too, '
    + 'so each cargo error would show twice. Turn off rust-analyzer\'s check on save in this workspace? '
    + '(rust-analyzer keeps its own analysis.)';
export const TURN_OFF = 'Turn Off';
export const KEEP = 'Keep It';
