/// The scripts of the BullMQ intake (contract section 11): our own Lua over BullMQ 5's data model
/// (`docs/PROTOCOL.md`, "Running beside the MediaNest backend"). Every step is one script, so a
/// daemon killed between two of them leaves BullMQ's data as BullMQ itself would: a taken job that
/// was not yet handed to our stream keeps only its lock, which lapses, and the stalled check puts it
/// back in `wait`; a handed job is in our set `P:bullmq:<queue>:held` and lives on in our stream.
///
/// Key names: `base` is `<bullmq prefix>:<queue>:`; the job hash is `base .. id`, its lock
/// `base .. id .. ':lock'`, the lists and sets `base .. 'wait'` and so on. BullMQ itself builds its
/// keys the same way inside its scripts (one Redis, no cluster).
enum BullMQScripts {
    /// Helpers shared by the scripts. `ev` appends to the queue's `events` stream trimmed to
    /// `meta.opts.maxLenEvents` (10000 when unset); `finishJob` moves a job out of active into
    /// completed or failed with BullMQ's removeOnComplete/removeOnFail rules.
    static let prelude = """
        local base = ARGV[1]
        local function k(name) return base .. name end
        local maxEvents = tonumber(redis.call('HGET', k('meta'), 'opts.maxLenEvents')) or 10000
        local function ev(...)
          redis.call('XADD', k('events'), 'MAXLEN', '~', maxEvents, '*', ...)
        end
        local function optsOf(id)
          local raw = redis.call('HGET', k(id), 'opts')
          if not raw then return {} end
          local ok, v = pcall(cjson.decode, raw)
          if ok and type(v) == 'table' then return v end
          return {}
        end
        local function removeJobKeys(id)
          local jk = k(id)
          redis.call('DEL', jk, jk .. ':logs', jk .. ':lock', jk .. ':dependencies', jk .. ':processed', jk .. ':failed')
        end
        -- keep: the job's removeOnComplete/removeOnFail: true (remove now), a number (keep the newest n),
        -- {count, age} (age in seconds), false or absent (keep all).
        local function trim(target, keep, now)
          local count, age = -1, nil
          if keep == true then count = 0
          elseif type(keep) == 'number' then count = keep
          elseif type(keep) == 'table' then count = tonumber(keep['count']) or -1; age = tonumber(keep['age']) end
          if age then
            local old = redis.call('ZRANGEBYSCORE', target, '-inf', now - age * 1000, 'LIMIT', 0, 1000)
            for _, j in ipairs(old) do removeJobKeys(j); redis.call('ZREM', target, j) end
          end
          if count > 0 then
            local extra = redis.call('ZREVRANGE', target, count, -1)
            for _, j in ipairs(extra) do removeJobKeys(j) end
            if #extra > 0 then redis.call('ZREMRANGEBYRANK', target, 0, -(count + 1)) end
          end
        end
        -- Ends job `id` (taken out of active, delayed, stalled; lock deleted): outcome 'completed' with
        -- value the returnvalue JSON, or 'failed' with value the failedReason; atm attempts made.
        local function finishJob(id, outcome, value, atm, now)
          local jk = k(id)
          local opts = optsOf(id)
          redis.call('DEL', jk .. ':lock')
          redis.call('LREM', k('active'), 0, id)
          redis.call('ZREM', k('delayed'), id)
          redis.call('SREM', k('stalled'), id)
          local field, target, keep = 'returnvalue', k('completed'), opts['removeOnComplete']
          if outcome == 'failed' then field, target, keep = 'failedReason', k('failed'), opts['removeOnFail'] end
          if keep == true or keep == 0 or (type(keep) == 'table' and tonumber(keep['count']) == 0) then
            removeJobKeys(id)
          else
            redis.call('HSET', jk, field, value, 'finishedOn', now, 'atm', atm)
            if outcome == 'failed' then redis.call('HSET', jk, 'stacktrace', '[]') end
            redis.call('ZADD', target, now, id)
            trim(target, keep, now)
          end
          ev('event', outcome, 'jobId', id, field, value, 'prev', 'active')
          if outcome == 'failed' and atm >= (tonumber(opts['attempts']) or 1) then
            ev('event', 'retries-exhausted', 'jobId', id, 'attemptsMade', atm)
          end
          if redis.call('LLEN', k('wait')) == 0 and redis.call('LLEN', k('active')) == 0 and redis.call('ZCARD', k('prioritized')) == 0 then
            ev('event', 'drained')
          end
        end
        local function prioScore(p)
          return p * 0x100000000 + (redis.call('INCR', k('pc')) % 0x100000000)
        end
        """

    /// Takes up to `count` jobs into active for us, as a BullMQ worker's moveToActive does.
    /// KEYS: 1 our held set, 2 our queue stream.
    /// ARGV: 1 base, 2 now ms, 3 count, 4 lock token, 5 lock ms, 6 our consumer group.
    /// First promotes due delayed jobs (except held ones: their retry is ours to time). Stops when the
    /// queue is paused or at its global concurrency, and takes only what our stream does not already
    /// have waiting (its group lag). Returns {paused 0/1, {id, name, data, opts, atm}..., room left}.
    static let take =
        prelude + """

            local now, want, token, lockMs = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
            local due = redis.call('ZRANGEBYSCORE', k('delayed'), 0, (now + 1) * 0x1000 - 1, 'LIMIT', 0, 1000)
            for _, id in ipairs(due) do
              if redis.call('SISMEMBER', KEYS[1], id) == 0 then
                redis.call('ZREM', k('delayed'), id)
                local p = tonumber(redis.call('HGET', k(id), 'priority')) or 0
                if p == 0 then redis.call('LPUSH', k('wait'), id) else redis.call('ZADD', k('prioritized'), prioScore(p), id) end
                redis.call('HSET', k(id), 'delay', 0)
                ev('event', 'waiting', 'jobId', id, 'prev', 'delayed')
              end
            end
            local meta = redis.call('HMGET', k('meta'), 'paused', 'concurrency')
            if meta[1] then return {1, {}} end
            local n = want
            if meta[2] then n = math.min(n, tonumber(meta[2]) - redis.call('LLEN', k('active'))) end
            -- What our stream already has for this queue, not yet read by any daemon.
            local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[2])
            if ok then
              for _, g in ipairs(groups) do
                local f = {}
                for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
                if f['name'] == ARGV[6] then
                  local lag = f['lag']
                  if not lag then
                    lag = #redis.call('XRANGE', KEYS[2], '(' .. f['last-delivered-id'], '+', 'COUNT', math.max(n, 1))
                  end
                  n = n - tonumber(lag)
                end
              end
            end
            local out = {}
            while n > 0 do
              local id = redis.call('RPOPLPUSH', k('wait'), k('active'))
              if not id then
                local z = redis.call('ZPOPMIN', k('prioritized'))
                if #z == 0 then break end
                id = z[1]
                redis.call('LPUSH', k('active'), id)
              end
              local jk = k(id)
              if redis.call('EXISTS', jk) == 0 then
                redis.call('LREM', k('active'), 1, id)
              elseif redis.call('SISMEMBER', KEYS[1], id) == 0 then
                redis.call('SET', jk .. ':lock', token, 'PX', lockMs)
                redis.call('HSET', jk, 'processedOn', now)
                redis.call('HINCRBY', jk, 'ats', 1)
                ev('event', 'active', 'jobId', id, 'prev', 'waiting')
                local f = redis.call('HMGET', jk, 'name', 'data', 'opts', 'atm')
                out[#out + 1] = {id, f[1] or '', f[2] or '', f[3] or '', f[4] or '0'}
                n = n - 1
              end
            end
            return {0, out, n}
            """

    /// Hands taken jobs to our stream: for each whose lock is still ours, adds the envelope to our
    /// queue stream and the id to the held set, in one step. A job whose id of ours is known already
    /// (a hash, or remembered in `P:finished`) is not run twice: it fails in BullMQ, saying why (BullMQ
    /// numbers jobs anew after `obliterate`; `job.retry()` of a job that ended here).
    /// KEYS: 1 held set, 2 our queue stream, 3 our finished-ids set. ARGV: 1 base, 2 lock token, 3 now ms,
    /// 4 our job-hash prefix for the queue (`P:job:bullmq:<queue>:`), 5 our job-id prefix (`bullmq:<queue>:`),
    /// then pairs: id, envelope. Returns per job 1 (handed), 0 (the lock was lost: the stalled check puts
    /// it back) or 2 (known already: failed).
    static let admit =
        prelude + """

            local now = tonumber(ARGV[3])
            local out = {}
            for i = 6, #ARGV, 2 do
              local id, env = ARGV[i], ARGV[i + 1]
              if redis.call('GET', k(id) .. ':lock') ~= ARGV[2] then
                out[#out + 1] = 0
              elseif redis.call('EXISTS', ARGV[4] .. id) == 1 or redis.call('ZSCORE', KEYS[3], ARGV[5] .. id) then
                local atm = (tonumber(redis.call('HGET', k(id), 'atm')) or 0) + 1
                finishJob(id, 'failed', 'the job id ' .. ARGV[5] .. id .. ' has run here before; it is not run twice ' ..
                  '(BullMQ numbers jobs from 1 again after an obliterate, and a job that ended here is not retried through BullMQ)', atm, now)
                out[#out + 1] = 2
              else
                redis.call('XADD', KEYS[2], '*', 'job', env)
                redis.call('SADD', KEYS[1], id)
                out[#out + 1] = 1
              end
            end
            return out
            """

    /// Fails taken jobs that cannot become jobs of ours (unknown name, data that is not an object,
    /// bad options), with no retry. ARGV: 1 base, 2 lock token, 3 now ms, then pairs: id, reason.
    static let refuse =
        prelude + """

            local now = tonumber(ARGV[3])
            for i = 4, #ARGV, 2 do
              local id = ARGV[i]
              if redis.call('GET', k(id) .. ':lock') == ARGV[2] then
                local atm = (tonumber(redis.call('HGET', k(id), 'atm')) or 0) + 1
                finishJob(id, 'failed', ARGV[i + 1], atm, now)
              end
            end
            return 1
            """

    /// Mirrors every held job's state of ours into BullMQ: queued or running → in active with the lock
    /// renewed, progress copied (with a `progress` event when it changed), attempts started; waiting for a
    /// retry → in delayed at its due time with attempts made and the last error; completed → completed
    /// with the result as returnvalue; failed → failed with the error; cancelled → failed "cancelled".
    /// A held job whose BullMQ hash is gone was removed (`job.remove()`, obliterate): returned, to be
    /// cancelled here.
    /// KEYS: 1 held set, 2 our scheduled set. ARGV: 1 base, 2 our job-hash prefix (`P:job:bullmq:<queue>:`),
    /// 3 now ms, 4 lock token, 5 lock ms, 6 our job-id prefix (`bullmq:<queue>:`). Returns {ids to cancel, number finished}.
    static let sync =
        prelude + """

            local now, token, lockMs = tonumber(ARGV[3]), ARGV[4], ARGV[5]
            local cancel, finished = {}, 0
            for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
              local jk = k(id)
              local ours = ARGV[2] .. id
              local s = redis.call('HMGET', ours, 'state', 'attempt', 'progress', 'result', 'error')
              local state = s[1]
              local attempt = tonumber(s[2]) or 0
              if redis.call('EXISTS', jk) == 0 then
                -- Removed from BullMQ: cancelled here (asked again on every run until it has ended).
                if state == 'completed' or state == 'failed' or state == 'cancelled' then
                  redis.call('DEL', jk .. ':lock')
                  redis.call('SREM', KEYS[1], id)
                else
                  cancel[#cancel + 1] = id
                end
              elseif state == 'completed' or state == 'failed' or state == 'cancelled' then
                if s[3] and tonumber(s[3]) then redis.call('HSET', jk, 'progress', s[3]) end
                if state == 'completed' then
                  finishJob(id, 'completed', s[4] or 'null', attempt, now)
                elseif state == 'failed' then
                  finishJob(id, 'failed', s[5] or 'the job failed', attempt, now)
                else
                  finishJob(id, 'failed', 'cancelled', attempt, now)
                end
                redis.call('SREM', KEYS[1], id)
                finished = finished + 1
              elseif state == 'scheduled' then
                if not redis.call('ZSCORE', k('delayed'), id) then
                  local due = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[6] .. id)) or now
                  redis.call('DEL', jk .. ':lock')
                  redis.call('LREM', k('active'), 0, id)
                  redis.call('SREM', k('stalled'), id)
                  redis.call('HSET', jk, 'atm', attempt, 'delay', math.max(due - now, 0))
                  if s[5] then redis.call('HSET', jk, 'failedReason', s[5]) end
                  redis.call('ZADD', k('delayed'), due * 0x1000, id)
                  redis.call('ZADD', k('marker'), due, '1')
                  ev('event', 'delayed', 'jobId', id, 'delay', due)
                end
              else
                if redis.call('ZREM', k('delayed'), id) == 1 then
                  redis.call('LPUSH', k('active'), id)
                  ev('event', 'waiting', 'jobId', id, 'prev', 'delayed')
                  ev('event', 'active', 'jobId', id, 'prev', 'waiting')
                  redis.call('HSET', jk, 'processedOn', now)
                end
                redis.call('SET', jk .. ':lock', token, 'PX', lockMs)
                if state == 'active' then
                  local h = redis.call('HMGET', jk, 'progress', 'ats')
                  if s[3] and tonumber(s[3]) and h[1] ~= s[3] then
                    redis.call('HSET', jk, 'progress', s[3])
                    ev('event', 'progress', 'jobId', id, 'data', s[3])
                  end
                  if attempt > 0 and tonumber(h[2]) ~= attempt then redis.call('HSET', jk, 'ats', attempt) end
                end
              end
            end
            return {cancel, finished}
            """

    /// BullMQ's stalled check, cluster-wide at most once per lock duration (`stalled-check`): jobs in
    /// `stalled` that are not held by us and have lost their lock go back to `wait` (`stc` + 1), or
    /// fail past `maxStalled`; then `stalled` is refilled with the active jobs not held by us.
    /// KEYS: 1 held set. ARGV: 1 base, 2 now ms, 3 lock ms, 4 max stalled. Returns {back, failed}.
    static let stalledCheck =
        prelude + """

            local now, lockMs, maxStalled = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
            if not redis.call('SET', k('stalled-check'), now, 'PX', lockMs, 'NX') then return {0, 0} end
            local back, failed = 0, 0
            for _, id in ipairs(redis.call('SMEMBERS', k('stalled'))) do
              if redis.call('SISMEMBER', KEYS[1], id) == 0 and redis.call('EXISTS', k(id) .. ':lock') == 0
                and redis.call('LREM', k('active'), 1, id) > 0 then
                if redis.call('EXISTS', k(id)) == 1 then
                  local stc = redis.call('HINCRBY', k(id), 'stc', 1)
                  ev('event', 'stalled', 'jobId', id)
                  if stc > maxStalled then
                    redis.call('LPUSH', k('active'), id)
                    local atm = (tonumber(redis.call('HGET', k(id), 'atm')) or 0) + 1
                    finishJob(id, 'failed', 'job stalled more than allowable limit', atm, now)
                    failed = failed + 1
                  else
                    redis.call('RPUSH', k('wait'), id)
                    redis.call('ZADD', k('marker'), 0, '0')
                    ev('event', 'waiting', 'jobId', id, 'prev', 'active')
                    back = back + 1
                  end
                end
              end
            end
            redis.call('DEL', k('stalled'))
            for _, id in ipairs(redis.call('LRANGE', k('active'), 0, -1)) do
              if redis.call('SISMEMBER', KEYS[1], id) == 0 then redis.call('SADD', k('stalled'), id) end
            end
            return {back, failed}
            """
}
