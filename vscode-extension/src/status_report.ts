/**
 * The readable view of `buildd/status` that the "Show Status" command opens: the daemon, then
 * each workspace with its state, last job, target dir and diagnostics, as Markdown. A pure
 * function of the `StatusReport`, without `vscode`, so it is unit-tested.
 */
import { StatusReport, WorkspaceStatus } from './protocol';

export function renderStatus(report: StatusReport): string {
    const d = report.daemon;
    const lines: string[] = [
        '# buildd status',
        '',
        `Daemon ${d.version} (protocol ${d.protocol}), pid ${d.pid}, up ${duration(d.uptime_secs * 1000)}, `
            + `${d.clients} ${d.clients === 1 ? 'client' : 'clients'}; stops after ${duration(d.idle_timeout_secs * 1000)} idle.`,
        '',
        `- log: \`${d.log_path}\``,
        `- cache: \`${d.cache_dir}\``,
        `- socket: \`${d.socket}\``,
        '',
    ];
    if (report.workspaces.length === 0) {
        lines.push('No workspace is registered.', '');
    }
    for (const w of report.workspaces) {
        lines.push(...renderWorkspace(w), '');
    }
    return lines.join('\n');
}

const STATE_TEXT: Record<WorkspaceStatus['state'], string> = {
    idle: 'warm',
    queued: 'queued',
    running: 'building',
    failed: 'failed',
    error: 'cannot be built',
};

function renderWorkspace(w: WorkspaceStatus): string[] {
    const lines = [`## ${w.root}`, '', `State: **${STATE_TEXT[w.state] ?? w.state}**`];
    if (w.error) {
        lines.push('', `Error: ${w.error}`);
    }
    lines.push('');
    if (w.current_job) {
        const c = w.current_job;
        lines.push(
            `- running: job #${c.id} (${c.stages.join(', ')})${c.stage ? `, stage ${c.stage}` : ''}, `
                + `${c.units_done} ${c.units_done === 1 ? 'unit' : 'units'} so far`,
        );
    }
    if (w.last_change) {
        const ch = w.last_change;
        const files = ch.files.length === 1 ? `\`${ch.files[0]}\`` : `${ch.files.length} files`;
        const what = ch.full ? 'everything' : ch.predicted.length > 0 ? ch.predicted.join(', ') : 'nothing (no target reads it)';
        lines.push(`- last change: ${files}; rebuilds ${what}`);
    }
    if (w.last_job) {
        const j = w.last_job;
        lines.push(
            `- last job: #${j.id} (${j.stages.join(', ')}) ${j.result} in ${duration(j.duration_ms)}, `
                + `${j.units_compiled} ${j.units_compiled === 1 ? 'unit' : 'units'} compiled, `
                + `${j.errors} ${j.errors === 1 ? 'error' : 'errors'}, ${j.warnings} ${j.warnings === 1 ? 'warning' : 'warnings'}`,
        );
        if (j.rebuilt && j.rebuilt.length > 0) {
            lines.push(`- rebuilt: ${j.rebuilt.join(', ')}`);
        }
        if (j.failure) {
            lines.push(`- cargo failed: ${j.failure.split('\n')[0]}`);
        }
    } else {
        lines.push('- no job has finished yet');
    }
    if (w.last_tests) {
        const t = w.last_tests;
        lines.push(
            `- last tests (${t.runner}, job #${t.job}): ${t.passed} passed, ${t.failed} failed, ${t.ignored} ignored `
                + `in ${duration(t.duration_ms)}`,
        );
        for (const f of t.failing) {
            const where = f.file ? ` at \`${f.file}${f.line ? `:${f.line}` : ''}\`` : '';
            lines.push(`  - failing: ${f.name}${where}${f.message ? `: ${f.message.split('\n')[0]}` : ''}`);
        }
    }
    if (w.target_dir) {
        const size = w.target_dir_size === null ? '' : ` (${bytes(w.target_dir_size)})`;
        lines.push(`- target dir: \`${w.target_dir}\`${size}`);
    }
    if (w.key) {
        const env = Object.entries(w.key.env).map(([k, v]) => `${k}=${v}`).join(' ');
        lines.push(
            `- build key ${w.key.hash}: ${w.key.rustc}, ${w.key.target}, ${w.key.profile}, features ${w.key.features}`
                + (env ? `, ${env}` : ''),
        );
    }
    if (w.watcher && (w.watcher.kind !== 'native' || w.watcher.note)) {
        lines.push(`- watcher: ${w.watcher.kind}${w.watcher.note ? `: ${w.watcher.note}` : ''}`);
    }
    if (w.diagnostics.length > 0) {
        lines.push('', '### Diagnostics', '');
        for (const diag of w.diagnostics) {
            lines.push(`- ${diag.severity}: \`${diag.file}:${diag.line}:${diag.column}\` ${diag.message}`);
        }
    }
    return lines;
}

/** "850ms", "12.3s", "4m 05s", "3h 00m". */
export function duration(ms: number): string {
    if (ms < 1000) {
        return `${Math.round(ms)}ms`;
    }
    const secs = ms / 1000;
    if (secs < 60) {
        return `${secs.toFixed(1)}s`;
    }
    const whole = Math.floor(secs);
    if (whole < 3600) {
        return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, '0')}s`;
    }
    return `${Math.floor(whole / 3600)}h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

/** "512 B", "37.5 MiB". */
export function bytes(n: number): string {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
        value /= 1024;
        unit++;
    }
    return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}
