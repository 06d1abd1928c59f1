import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { crashMessage, lastError, startFailureMessage, Tail } from '../src/failure';

// What a buildd without the lsp subcommand prints (clap's message).
const OLD_BUILDD = `error: unrecognized subcommand 'lsp'

  tip: a similar subcommand exists: 'stop'

Usage: buildd [OPTIONS] <COMMAND>

For more information, try '--help'.
`;

describe('startFailureMessage', () => {
    it('recognises a buildd too old to have buildd lsp', () => {
        assert.equal(
            startFailureMessage('/usr/local/bin/buildd', OLD_BUILDD, 'write EPIPE'),
            '/usr/local/bin/buildd is a buildd without `buildd lsp`, too old for this extension: '
                + 'install a newer buildd (or point buildd.path at one), then restart buildd',
        );
    });

    it('quotes buildd\'s own error, and says where to look', () => {
        const message = startFailureMessage(
            '/b/buildd',
            '2026-11-22T03:00:00Z  INFO starting\nbuildd: could not start the daemon: permission denied on /run/user/0/buildd\n',
            'Pending response rejected since connection got disposed',
        );
        assert.match(message, /^buildd lsp could not start: buildd: could not start the daemon: permission denied on \/run\/user\/0\/buildd\. /);
        assert.match(message, /`buildd status` in a terminal says why/);
    });

    it('falls back to the client\'s error when buildd said nothing', () => {
        assert.match(startFailureMessage('/b/buildd', '', 'spawn EACCES'), /^buildd lsp could not start: spawn EACCES\. /);
    });
});

describe('crashMessage', () => {
    it('says whether the server was restarted', () => {
        assert.equal(crashMessage('error: lost the daemon\n', 1, true), 'buildd lsp stopped unexpectedly: error: lost the daemon. It was restarted.');
        assert.match(crashMessage('', 4, false), /^buildd lsp stopped unexpectedly\. It stopped 4 times in 3 minutes and is not restarted again/);
    });
});

describe('lastError', () => {
    it('prefers error lines to the last line', () => {
        assert.equal(lastError(OLD_BUILDD), "error: unrecognized subcommand 'lsp'");
        assert.equal(lastError('a\nb\n'), 'b');
        assert.equal(lastError('\n\n'), undefined);
    });
});

describe('Tail', () => {
    it('keeps the last lines, across chunks that split lines', () => {
        const tail = new Tail(2);
        tail.push('one\ntw');
        tail.push('o\nthree\nfo');
        assert.equal(tail.text(), 'two\nthree\nfo');
        tail.push('ur\n');
        assert.equal(tail.text(), 'three\nfour');
    });
});
