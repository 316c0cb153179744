import { Entity, Key } from '../../src/datastore';
import { ModelFactory } from '../../src/dynamic';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';

describeEachFlavour('dsmigrate schema', (ctx) => {
  it('plan lists waiting plans, apply runs one through the runner, cleanup removes orphans past their retention; bad input exits 2 and changes nothing', async () => {
    const store = await ctx.connect();
    const namespace = 'cli-schema';
    const factory = new ModelFactory(store, { namespace, stalenessMs: 0 });
    await factory.define({
      name: 'Survey',
      kind: 'Answer',
      fields: [
        { name: 'title', type: 'string', default: 'x' },
        { name: 'age', type: 'string', nullable: true },
      ],
    });
    await store.save([1, 2, 3].map((i) => Entity.from(Key.of('Answer', i, { namespace }), { title: `t${i}`, age: String(i) })));
    await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => (f.name === 'title' ? { ...f, name: 'heading' } : f)) }));
    await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => (f.name === 'age' ? { id: f.id, name: 'age', type: 'integer' as const, nullable: true } : f)) }), {
      force: true,
      converters: { age: (v) => Number(v) },
    });
    const cwd = tempApp({ 'migrations/.keep': '' });
    const cli = (...args: string[]) => runCli(['schema', ...args, '--models-namespace', namespace], { cwd, env: ctx.env() });

    const plan = await cli('plan', 'Survey', '--json');
    expect(plan.code).toBe(0);
    const listed = JSON.parse(plan.stdout) as { id: string; status: string }[];
    expect(listed.map((m) => [m.id, m.status])).toEqual([
      [`schema:${namespace}/Survey@v1-v2`, 'approved'],
      [`schema:${namespace}/Survey@v2-v3`, 'pending'],
    ]);
    expect((await cli('plan')).stdout).toContain('needs approval');

    const applied = await cli('apply', 'Survey', '--version', '2');
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect((await store.get(Key.of('Answer', 2, { namespace })))!.get('heading')).toBe('t2');
    // status lists it with the migration files, named by the two versions it moved between.
    const status = await runCli(['status', '--json'], { cwd, env: ctx.env() });
    expect(JSON.parse(status.stdout)).toContainEqual(expect.objectContaining({ app: 'schema', name: `${namespace}/Survey@v1-v2`, state: 'applied', schema: true }));

    // The forced conversion's function lives only in the process that was given it: the CLI refuses, and converts nothing.
    const forced = await cli('apply', 'Survey', '--version', '3');
    expect(forced.code).toBe(2);
    expect(forced.stderr).toContain('field "age"');
    expect((await store.get(Key.of('Answer', 2, { namespace })))!.get('age')).toBe('2');

    const badDuration = await cli('cleanup', '--older-than', 'soon');
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain('--older-than');

    const dry = await cli('cleanup', '--older-than', '0s', '--dry-run', '--json');
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, orphans: [expect.objectContaining({ kind: 'Answer', property: 'title' })] });
    expect((await store.get(Key.of('Answer', 2, { namespace })))!.get('title')).toBe('t2');
    expect((await cli('cleanup', '--older-than', '0s')).code).toBe(0);
    expect((await store.get(Key.of('Answer', 2, { namespace })))!.has('title')).toBe(false);
    expect((await store.get(Key.of('Answer', 2, { namespace })))!.get('heading')).toBe('t2');
  });
});
