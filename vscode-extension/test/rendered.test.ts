import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRenderedArgument, renderedDocumentName } from '../src/rendered';

describe('parseRenderedArgument', () => {
    it('takes the code action\'s argument', () => {
        assert.deepEqual(
            parseRenderedArgument([{ title: 'unused import: `std::fmt::Write`', rendered: 'warning: unused import\n --> src/lib.rs:3:5\n' }]),
            { title: 'unused import: `std::fmt::Write`', rendered: 'warning: unused import\n --> src/lib.rs:3:5\n' },
        );
        assert.deepEqual(parseRenderedArgument([{ rendered: 'x' }]), { title: '', rendered: 'x' });
    });

    it('says what is wrong with anything else', () => {
        assert.match(parseRenderedArgument([]) as string, /needs the argument/);
        assert.match(parseRenderedArgument(['text']) as string, /needs the argument/);
        assert.match(parseRenderedArgument([{ title: 't' }]) as string, /no `rendered` text/);
    });
});

describe('renderedDocumentName', () => {
    it('is the diagnostic\'s words without path characters', () => {
        assert.equal(renderedDocumentName('unused import: `std::fmt::Write`'), 'unused import std fmt Write (buildd).txt');
        assert.equal(renderedDocumentName(''), 'compiler output (buildd).txt');
        assert.ok(renderedDocumentName('x'.repeat(200)).length < 80);
    });
});
