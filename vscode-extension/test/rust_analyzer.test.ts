import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { checkOnSaveEnabled, shouldOfferToDisableCheckOnSave } from '../src/rust_analyzer';

describe('checkOnSaveEnabled', () => {
    it('reads the boolean setting and the older { enable } form; unset is rust-analyzer\'s default, on', () => {
        assert.equal(checkOnSaveEnabled(true), true);
        assert.equal(checkOnSaveEnabled(false), false);
        assert.equal(checkOnSaveEnabled({ enable: false }), false);
        assert.equal(checkOnSaveEnabled({ enable: true }), true);
        assert.equal(checkOnSaveEnabled(undefined), true);
    });
});

describe('shouldOfferToDisableCheckOnSave', () => {
    const offer = { rustAnalyzerInstalled: true, checkOnSave: true, alreadyOffered: false, offerEnabled: true };

    it('offers when rust-analyzer is installed with check on save on', () => {
        assert.equal(shouldOfferToDisableCheckOnSave(offer), true);
        assert.equal(shouldOfferToDisableCheckOnSave({ ...offer, checkOnSave: undefined }), true);
    });

    it('offers only once, and not when there is nothing to turn off or the user said not to', () => {
        assert.equal(shouldOfferToDisableCheckOnSave({ ...offer, alreadyOffered: true }), false);
        assert.equal(shouldOfferToDisableCheckOnSave({ ...offer, rustAnalyzerInstalled: false }), false);
        assert.equal(shouldOfferToDisableCheckOnSave({ ...offer, checkOnSave: false }), false);
        assert.equal(shouldOfferToDisableCheckOnSave({ ...offer, offerEnabled: false }), false);
    });
});
