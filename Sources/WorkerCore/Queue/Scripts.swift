/// Server-side scripts that make each queue transition atomic.
///
/// Every transition of a job is one script: it checks that the caller still owns the job
/// (the hash's `entry` and `worker` fields), changes the hash, acknowledges the stream entry
/// and publishes the event, all at once. That is what makes "never run twice to completion"
/// hold when a lease lapses and another host has taken the job over: the stale holder's
/// script sees it no longer owns the job and changes nothing.
enum Scripts {
    /// Shared Lua helpers, prepended to scripts that publish events.
    /// `emit(event, channel, userChannel, log, maxlen)`: PUBLISH to P:events (and the user channel) and XADD to P:events:log.
    static let prelude = """
        local function emit(ev, channel, userChannel, log, maxlen)
          if ev == nil or ev == '' then return end
          redis.call('PUBLISH', channel, ev)
          if userChannel ~= nil and userChannel ~= '' then redis.call('PUBLISH', userChannel, ev) end
          redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'event', ev)
        end
        -- writeRecord(records, id, v): the job's durable record into the records outbox (P:records), from
        -- its values in recordFields' order (nil or false: not there), packed into one field `r` (one
        -- MessagePack value each; see PackedValues). Record writers move it into PostgreSQL; the entry id
        -- orders it. record(records, h, id): the same from a snapshot of its hash after the transition.
        local recordFields = {'state', 'queue', 'type', 'userId', 'attempt', 'maxAttempts', 'envelope', 'error', 'result',
          'createdAt', 'startedAt', 'finishedAt', 'updatedAt', 'worker'}
        local function writeRecord(records, id, v)
          if not v[1] or not v[2] or not v[3] then return end
          redis.call('XADD', records, '*', 'k', 'job', 'id', id, 'r', cmsgpack.pack(unpack(v, 1, 14)))
        end
        local function record(records, h, id)
          writeRecord(records, id, redis.call('HMGET', h, unpack(recordFields)))
        end
        -- observe(outcomes, h, id, outcome, detail): the outcome of an attempt for the observers
        -- (notifications, error logs, webhooks, mail), into P:outcomes, read by every host's dispatcher.
        local observeFields = {'queue', 'type', 'userId', 'attempt', 'maxAttempts', 'envelope', 'error', 'result', 'updatedAt'}
        local observeNames = {'q', 't', 'u', 'a', 'm', 'env', 'err', 'res', 'at'}
        local function observe(outcomes, h, id, outcome, detail)
          local v = redis.call('HMGET', h, unpack(observeFields))
          if not v[1] or not v[2] then return end
          local args = {'id', id, 'o', outcome}
          for i = 1, #observeFields do
            if v[i] then args[#args + 1] = observeNames[i]; args[#args + 1] = v[i] end
          end
          if detail ~= nil and detail ~= '' then args[#args + 1] = 'det'; args[#args + 1] = detail end
          redis.call('XADD', outcomes, '*', unpack(args))
        end
        """

    /// Takes a batch of stream entries of one queue into their jobs' state, in one call.
    /// KEYS: 1 queue stream, 2 scheduled zset, 3 events log, 4 records outbox, 5 outcomes stream, 6 finished-ids zset,
    ///       then one job hash per entry
    /// ARGV: 1 consumer, 2 now (RFC 3339), 3 now (ms), 4 queue, 5 group, 6 events channel,
    ///       7 user channel prefix (`P:user:`), 8 retention seconds, 9 exhausted error, 10 events log maxlen,
    ///       then 9 per entry: entry id, type, userId or '', maxAttempts, envelope, createdAt, runAt ms or '',
    ///       job id, started event
    /// Every transition writes the job's record into the outbox; the rare cancelled and exhausted
    /// outcomes also write their outcome for the observers (their events are published by the caller).
    /// Returns, per entry, outcome, attempt, state: outcome is run, skip (already finished), duplicate,
    /// scheduled, cancelled or exhausted. Every outcome but `run` has acknowledged the entry.
    static let intake =
        prelude + """

            local out, o = {}, 0
            local function ack(eid) redis.call('XACK', KEYS[1], ARGV[5], eid) end
            local n = #KEYS - 6
            for i = 1, n do
              local h = KEYS[6 + i]
              local b = 10 + (i - 1) * 9
              local eid, typ, user, maxA, env, created, runAt, jid, started =
                ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8], ARGV[b + 9]
              local st = redis.call('HMGET', h, 'state', 'entry', 'cancel', 'attempt')
              if st[1] then
                -- A job seen before (a retry, a rescue, a duplicate): what its record keeps from earlier.
                local more = redis.call('HMGET', h, 'queue', 'userId', 'error', 'result', 'createdAt', 'finishedAt')
                for k = 1, 6 do st[4 + k] = more[k] end
              end
              local state, entry, cancel = st[1], st[2], st[3]
              local attempt = tonumber(st[4]) or 0
              local outcome
              -- The envelope's fields, after the attempt's six pairs (a run writes both in one HSET; the
              -- rarer outcomes write these alone, from 13).
              local fields = {'state', 'active', 'attempt', 0, 'worker', ARGV[1], 'startedAt', ARGV[2],
                'updatedAt', ARGV[2], 'progress', '0', 'type', typ, 'queue', ARGV[4], 'maxAttempts', maxA,
                'envelope', env, 'entry', eid}
              local nf = 22
              if not state then fields[23] = 'createdAt'; fields[24] = created; nf = 24 end
              if user ~= '' then fields[nf + 1] = 'userId'; fields[nf + 2] = user; nf = nf + 2 end
              if state == 'completed' or state == 'failed' or state == 'cancelled' then
                ack(eid); outcome = 'skip'
                if state == 'cancelled' and not st[5] then
                  -- Cancelled before it ever arrived: now that its type and queue are known, it gets its record.
                  redis.call('HSET', h, unpack(fields, 13, nf))
                  redis.call('HDEL', h, 'entry')
                  if not redis.call('HGET', h, 'createdAt') then redis.call('HSET', h, 'createdAt', created) end
                  record(KEYS[4], h, jid)
                end
              elseif not state and redis.call('ZSCORE', KEYS[6], jid) then
                -- Finished earlier; its hash has expired since (the id is kept for retention.jobs).
                ack(eid); outcome = 'skip'; state = 'finished'
              elseif state == 'scheduled' or (entry and entry ~= eid) then
                ack(eid); outcome = 'duplicate'
              else
                local firstSight = (entry == false or entry == nil)
                local exhausted = (state == 'active' and attempt >= tonumber(maxA))
                local waits = (firstSight and runAt ~= '' and tonumber(runAt) > tonumber(ARGV[3]))
                if cancel == '1' or exhausted or waits then redis.call('HSET', h, unpack(fields, 13, nf)) end
                if cancel == '1' then
                  redis.call('HSET', h, 'state', 'cancelled', 'finishedAt', ARGV[2], 'updatedAt', ARGV[2])
                  redis.call('HDEL', h, 'entry')
                  redis.call('EXPIRE', h, ARGV[8])
                  redis.call('ZADD', KEYS[6], ARGV[3], jid)
                  ack(eid); outcome = 'cancelled'; state = 'cancelled'
                  observe(KEYS[5], h, jid, 'cancelled', '')
                elseif exhausted then
                  redis.call('HSET', h, 'state', 'failed', 'error', ARGV[9], 'finishedAt', ARGV[2], 'updatedAt', ARGV[2])
                  redis.call('HDEL', h, 'entry')
                  redis.call('EXPIRE', h, ARGV[8])
                  redis.call('ZADD', KEYS[6], ARGV[3], jid)
                  ack(eid); outcome = 'exhausted'; state = 'failed'
                  observe(KEYS[5], h, jid, 'failed', '')
                elseif waits then
                  redis.call('HSET', h, 'state', 'scheduled', 'updatedAt', ARGV[2], 'attempt', attempt)
                  redis.call('HDEL', h, 'entry')
                  redis.call('ZADD', KEYS[2], runAt, jid)
                  ack(eid); outcome = 'scheduled'; state = 'scheduled'
                else
                  attempt = attempt + 1
                  -- One write: the envelope's fields and the attempt's. A first attempt has nothing to clear.
                  fields[4] = attempt
                  redis.call('HSET', h, unpack(fields, 1, nf))
                  if attempt > 1 then redis.call('HDEL', h, 'stage', 'downloadedBytes', 'totalBytes', 'speed', 'eta', 'finishedAt') end
                  emit(started, ARGV[6], user ~= '' and (ARGV[7] .. user) or '', KEYS[3], ARGV[10])
                  outcome = 'run'; state = 'active'
                  -- The record from what was read and written, without reading the hash again.
                  local c = st[9]
                  if not c and not st[1] then c = created end
                  local u = (user ~= '' and user) or st[6]
                  local f = (attempt == 1 and st[10]) or nil
                  writeRecord(KEYS[4], jid, {'active', ARGV[4], typ, u, attempt, maxA, env, st[7], st[8], c, ARGV[2], f,
                    ARGV[2], ARGV[1]})
                end
                if outcome ~= 'run' then record(KEYS[4], h, jid) end
              end
              out[o + 1] = outcome; out[o + 2] = attempt; out[o + 3] = state or ''; o = o + 3
            end
            return out
            """

    /// Ends the attempts of a batch of jobs, each only if the caller still owns it, in one call.
    /// KEYS: 1 events log, 2 scheduled zset, 3 records outbox, 4 outcomes stream, 5 finished-ids zset,
    ///       then 2 per job: its hash, its queue stream
    /// ARGV: 1 consumer, 2 group, 3 now (RFC 3339), 4 now (ms), 5 retention seconds, 6 events channel,
    ///       7 events log maxlen, then 9 per job: entry id, mode (completed, failed, retry, deferred, cancelled,
    ///       requeue), result JSON or error text, due ms (retry), job id, event, user channel or '',
    ///       outcome for the observers or '' (none of them wants it), failure detail for the observers
    /// Returns, per job, 1 when the transition happened, 0 when the caller no longer owns the job, or the
    /// error of that job alone (the others go on: each job's finish runs under `pcall`).
    /// The hash is read once; the record is built from what was read and what was written. The entries
    /// are acknowledged and the finished ids kept once for the whole batch, at its end.
    static let finish =
        prelude + """

            local now, nowMs, retention = ARGV[3], ARGV[4], ARGV[5]
            local acks, finished, nfin = {}, {}, 0
            -- The record's fields in writeRecord's order, then the two the transition needs besides.
            local fields = {'state', 'queue', 'type', 'userId', 'attempt', 'maxAttempts', 'envelope', 'error', 'result',
              'createdAt', 'startedAt', 'finishedAt', 'updatedAt', 'worker', 'entry', 'eta'}
            local function finishOne(h, stream, eid, mode, detail, due, jid, ev, userChannel, observed, failDetail)
              -- v is the record: what was read, changed below to what is written.
              local v = redis.call('HMGET', h, unpack(fields))
              if v[1] ~= 'active' or v[15] ~= eid or v[14] ~= ARGV[1] then return 0 end
              local terminal = (mode == 'completed' or mode == 'failed' or mode == 'cancelled')
              v[13] = now
              if mode == 'completed' then
                redis.call('HSET', h, 'state', 'completed', 'progress', '100', 'result', detail, 'finishedAt', now, 'updatedAt', now)
                if v[16] then redis.call('HDEL', h, 'eta') end
                v[1] = 'completed'; v[9] = detail; v[12] = now
              elseif mode == 'failed' then
                redis.call('HSET', h, 'state', 'failed', 'error', detail, 'finishedAt', now, 'updatedAt', now)
                redis.call('HDEL', h, 'entry', 'eta')
                v[1] = 'failed'; v[8] = detail; v[12] = now
              elseif mode == 'cancelled' then
                redis.call('HSET', h, 'state', 'cancelled', 'finishedAt', now, 'updatedAt', now)
                redis.call('HDEL', h, 'entry', 'eta')
                v[1] = 'cancelled'; v[12] = now
              elseif mode == 'retry' or mode == 'deferred' then
                redis.call('HSET', h, 'state', 'scheduled', 'error', detail, 'updatedAt', now)
                if mode == 'deferred' then
                  v[5] = tostring(math.max((tonumber(v[5]) or 1) - 1, 0))
                  redis.call('HSET', h, 'attempt', v[5])
                end
                redis.call('HDEL', h, 'entry', 'eta', 'speed')
                redis.call('ZADD', KEYS[2], due, jid)
                v[1] = 'scheduled'; v[8] = detail
              elseif mode == 'requeue' then
                local neid = redis.call('XADD', stream, '*', 'job', v[7])
                v[5] = tostring(math.max((tonumber(v[5]) or 1) - 1, 0))
                redis.call('HSET', h, 'state', 'queued', 'entry', neid, 'attempt', v[5], 'updatedAt', now)
                redis.call('HDEL', h, 'worker', 'stage', 'eta', 'speed')
                v[1] = 'queued'; v[14] = false
              else
                return redis.error_reply('unknown finish mode ' .. mode)
              end
              if terminal then
                redis.call('EXPIRE', h, retention)
                finished[nfin + 1] = nowMs; finished[nfin + 2] = jid; nfin = nfin + 2
              end
              local ids = acks[stream]
              if not ids then ids = {}; acks[stream] = ids end
              ids[#ids + 1] = eid
              emit(ev, ARGV[6], userChannel, KEYS[1], ARGV[7])
              writeRecord(KEYS[3], jid, v)
              if observed ~= '' then observe(KEYS[4], h, jid, observed, failDetail) end
              return 1
            end
            local out = {}
            local n = (#KEYS - 5) / 2
            for i = 1, n do
              local b = 7 + (i - 1) * 9
              local ok, res = pcall(finishOne, KEYS[4 + 2 * i], KEYS[5 + 2 * i], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3],
                ARGV[b + 4], ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8], ARGV[b + 9])
              if ok then out[i] = res
              elseif type(res) == 'table' and res.err then out[i] = {err = res.err}
              else out[i] = {err = tostring(res)} end
            end
            -- The batch's acknowledgements (one XACK per stream) and finished ids (one ZADD), in the same call.
            for stream, ids in pairs(acks) do redis.call('XACK', stream, ARGV[2], unpack(ids)) end
            if nfin > 0 then redis.call('ZADD', KEYS[5], unpack(finished, 1, nfin)) end
            return out
            """

    /// Moves due scheduled jobs from the scheduled set back into their queue streams.
    /// KEYS: 1 scheduled zset, 2 records outbox. ARGV: 1 now ms, 2 limit, 3 key prefix, 4 now (RFC 3339)
    /// Returns the number of jobs moved.
    static let promote =
        prelude + """

            local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
            local n = 0
            for _, id in ipairs(ids) do
              redis.call('ZREM', KEYS[1], id)
              local h = ARGV[3] .. ':job:' .. id
              local v = redis.call('HMGET', h, 'state', 'envelope', 'queue')
              if v[1] == 'scheduled' and v[2] and v[3] then
                local eid = redis.call('XADD', ARGV[3] .. ':queue:' .. v[3], '*', 'job', v[2])
                redis.call('HSET', h, 'state', 'queued', 'entry', eid, 'updatedAt', ARGV[4])
                record(KEYS[2], h, id)
                n = n + 1
              end
            end
            return n
            """

    /// Cancels a job that is not running, or flags a running one for its holder.
    /// KEYS: 1 job hash, 2 scheduled zset, 3 records outbox, 4 outcomes stream, 5 finished-ids zset.
    /// ARGV: 1 job id, 2 now (RFC 3339), 3 retention seconds, 4 now (ms)
    /// Returns {outcome, state, type, queue, userId, envelope}: outcome is cancelled (was queued, scheduled
    /// or unknown), active (flagged; its holder stops it), or finished (already terminal: nothing to do).
    static let cancel =
        prelude + """

            local h = KEYS[1]
            local v = redis.call('HMGET', h, 'state', 'type', 'queue', 'userId', 'envelope')
            local state = v[1]
            if state == 'completed' or state == 'failed' or state == 'cancelled' then
              return {'finished', state, v[2] or '', v[3] or '', v[4] or '', ''}
            end
            redis.call('HSET', h, 'cancel', '1', 'updatedAt', ARGV[2])
            if state == 'active' then return {'active', state, v[2] or '', v[3] or '', v[4] or '', ''} end
            redis.call('HSET', h, 'state', 'cancelled', 'finishedAt', ARGV[2])
            redis.call('HDEL', h, 'entry')
            redis.call('ZREM', KEYS[2], ARGV[1])
            redis.call('EXPIRE', h, ARGV[3])
            redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
            record(KEYS[3], h, ARGV[1])
            observe(KEYS[4], h, ARGV[1], 'cancelled', '')
            return {'cancelled', state or 'unknown', v[2] or '', v[3] or '', v[4] or '', v[5] or ''}
            """

    /// Folds a pause or resume command into the persisted pause set, once, in stream order.
    /// KEYS: 1 paused set, 2 applied-id key. ARGV: 1 queue, 2 pause|resume, 3 control entry id
    /// Returns 1 when applied, 0 when this or a later command was applied already.
    static let applyPause = """
        local last = redis.call('GET', KEYS[2])
        if last then
          local lm, ls = string.match(last, '^(%d+)-(%d+)$')
          local nm, ns = string.match(ARGV[3], '^(%d+)-(%d+)$')
          lm, ls, nm, ns = tonumber(lm), tonumber(ls), tonumber(nm), tonumber(ns)
          if nm < lm or (nm == lm and ns <= ls) then return 0 end
        end
        if ARGV[2] == 'pause' then redis.call('SADD', KEYS[1], ARGV[1]) else redis.call('SREM', KEYS[1], ARGV[1]) end
        redis.call('SET', KEYS[2], ARGV[3])
        return 1
        """

    /// Takes a start from a queue's shared rate limit (sliding window log).
    /// KEYS: 1 window zset. ARGV: 1 now ms, 2 window ms, 3 max starts, 4 unique member
    /// Returns 0 when granted, else the milliseconds to wait before trying again.
    static let rateLimit = """
        local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
        if redis.call('ZCARD', KEYS[1]) < max then
          redis.call('ZADD', KEYS[1], now, ARGV[4])
          redis.call('PEXPIRE', KEYS[1], window)
          return 0
        end
        local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        return math.max(tonumber(oldest[2]) + window - now, 1)
        """

    /// Records an entry that was refused, without touching a job that already exists under that id.
    /// KEYS: 1 job hash (any key when the entry had no usable id), 2 queue stream, 3 events log,
    ///       4 records outbox, 5 outcomes stream, 6 finished-ids zset.
    /// ARGV: 1 entry id, 2 group, 3 now, 4 error, 5 type, 6 queue, 7 userId, 8 retention, 9 event, 10 events channel,
    ///       11 user channel, 12 maxlen, 13 record id (the job id, or `invalid:<queue>:<entry>` without one),
    ///       14 '1' when the entry had a usable id (its hash is written) else '', 15 the entry as received
    ///       (shortened), 16 now (ms)
    /// Returns 1 when the refusal was recorded, 0 when the id belongs to an existing job.
    static let reject =
        prelude + """

            redis.call('XACK', KEYS[2], ARGV[2], ARGV[1])
            local rid = ARGV[13]
            if ARGV[14] == '1' then
              if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
              redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[4], 'queue', ARGV[6], 'attempt', '0',
                'createdAt', ARGV[3], 'finishedAt', ARGV[3], 'updatedAt', ARGV[3])
              if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'type', ARGV[5]) end
              if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'userId', ARGV[7]) end
              redis.call('EXPIRE', KEYS[1], ARGV[8])
              redis.call('ZADD', KEYS[6], ARGV[16], rid)
              emit(ARGV[9], ARGV[10], ARGV[11], KEYS[3], ARGV[12])
            end
            local common = {'id', rid, 'q', ARGV[6], 't', ARGV[5], 'a', '0', 'm', '0', 'err', ARGV[4], 'at', ARGV[3]}
            if ARGV[7] ~= '' then common[#common + 1] = 'u'; common[#common + 1] = ARGV[7] end
            redis.call('XADD', KEYS[4], '*', 'k', 'job', 'st', 'failed', 'c', ARGV[3], 'f', ARGV[3], 'raw', ARGV[15], unpack(common))
            redis.call('XADD', KEYS[5], '*', 'o', 'failed', 'det', ARGV[15], unpack(common))
            return 1
            """
}

extension Scripts {
    /// Puts stalled entries back at the end of their stream (the rescuer).
    /// KEYS: 1 queue stream. ARGV: 1 group, 2 consumer, 3 idle ms, 4 count, 5 job hash key prefix (`P:job:`),
    ///       then the entry ids of jobs running on the caller's daemon (left pending, their idle time reset)
    /// Returns {examined, rescued}.
    static let rescue = """
        local here = {}
        for i = 6, #ARGV do here[ARGV[i]] = true end
        local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
        local entries = reply[2]
        local rescued = 0
        for _, e in ipairs(entries) do
          local eid, fields = e[1], e[2]
          if not here[eid] and fields and #fields > 0 then
            local neid = redis.call('XADD', KEYS[1], '*', unpack(fields))
            local job
            for i = 1, #fields, 2 do if fields[i] == 'job' then job = fields[i + 1] end end
            local ok, decoded = pcall(cjson.decode, job or '')
            if ok and type(decoded) == 'table' and type(decoded['id']) == 'string' then
              local h = ARGV[5] .. decoded['id']
              if redis.call('HGET', h, 'entry') == eid then redis.call('HSET', h, 'entry', neid) end
            end
            redis.call('XACK', KEYS[1], ARGV[1], eid)
            rescued = rescued + 1
          end
        end
        return {#entries, rescued}
        """

    /// Runs a failed or cancelled job again: a new entry in its queue, attempts counted from zero.
    /// KEYS: 1 job hash, 2 queue stream, 3 records outbox, 4 finished-ids zset.
    /// ARGV: 1 envelope when the hash is gone (from PostgreSQL) or '', 2 now, 3 queue, 4 type, 5 userId or '', 6 job id,
    ///       7 createdAt when the hash is gone, or ''
    /// Returns {outcome, state}: queued, or refused with the state that forbids it (queued, scheduled, active, completed, unknown).
    static let retry =
        prelude + """

            local h = KEYS[1]
            local v = redis.call('HMGET', h, 'state', 'envelope')
            local state = v[1]
            if state and state ~= 'failed' and state ~= 'cancelled' then return {'refused', state} end
            local env = v[2] or ARGV[1]
            if env == false or env == nil or env == '' then return {'refused', 'unknown'} end
            local eid = redis.call('XADD', KEYS[2], '*', 'job', env)
            redis.call('HSET', h, 'state', 'queued', 'entry', eid, 'attempt', '0', 'updatedAt', ARGV[2], 'queue', ARGV[3],
              'type', ARGV[4], 'envelope', env)
            if ARGV[5] ~= '' then redis.call('HSET', h, 'userId', ARGV[5]) end
            if ARGV[7] ~= '' and not redis.call('HGET', h, 'createdAt') then redis.call('HSET', h, 'createdAt', ARGV[7]) end
            redis.call('HDEL', h, 'cancel', 'finishedAt', 'result', 'worker', 'stage', 'startedAt')
            redis.call('PERSIST', h)
            redis.call('ZREM', KEYS[4], ARGV[6])
            record(KEYS[3], h, ARGV[6])
            return {'queued', state or 'expired'}
            """

    /// Shared Lua helpers for the daemon's outbox streams (`P:records`, `P:outcomes`), each owned by
    /// one consumer group. `group(stream, name)`: {last delivered id, pending count, lag or nil}, or nil
    /// when the stream or the group is not there (a stream deleted meanwhile: its writers re-create it).
    /// `nextID(id)`: the smallest id after `id`. `less(a, b)`: whether id `a` comes before `b`.
    static let outboxPrelude = """
        local function group(stream, name)
          if redis.call('EXISTS', stream) == 0 then return nil end
          for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
            local e = {}
            for i = 1, #g, 2 do e[g[i]] = g[i + 1] end
            if e['name'] == name then return {e['last-delivered-id'], tonumber(e['pending']) or 0, tonumber(e['lag'])} end
          end
          return nil
        end
        local function idParts(id)
          local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
          return tonumber(ms) or 0, tonumber(seq) or 0
        end
        local function less(a, b)
          local am, as = idParts(a)
          local bm, bs = idParts(b)
          return am < bm or (am == bm and as < bs)
        end
        local function nextID(id)
          local ms, seq = idParts(id)
          return string.format('%d-%d', ms, seq + 1)
        end
        """

    /// Acknowledges entries of an outbox stream and trims its head: everything before the group's
    /// oldest entry not done (pending with any of its consumers, or not yet delivered) goes, whole
    /// stream nodes at a time. The group is the stream's owner, as when done entries were deleted one
    /// by one: another group someone added to the stream does not hold it back.
    /// KEYS: 1 stream. ARGV: 1 group, then the ids done. Returns the number of entries trimmed.
    static let outboxDone =
        outboxPrelude + """

            for i = 2, #ARGV, 4000 do
              redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 3999, #ARGV)))
            end
            local g = group(KEYS[1], ARGV[1])
            if not g then return 0 end
            local bound = nextID(g[1])
            if g[2] > 0 then
              local oldest = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
              if oldest and less(oldest, bound) then bound = oldest end
            end
            return redis.call('XTRIM', KEYS[1], 'MINID', bound)
            """

    /// What waits in an outbox stream for one group: {count, id of the oldest or false}. The count is the
    /// group's pending entries plus its lag (entries not yet delivered); when Redis cannot tell the lag,
    /// or there is no group, every entry in the stream counts.
    /// KEYS: 1 stream. ARGV: 1 group.
    static let outboxBacklog =
        outboxPrelude + """

            local g = group(KEYS[1], ARGV[1])
            if not g then
              local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
              return {redis.call('XLEN', KEYS[1]), first and first[1] or false}
            end
            local count = g[3] and (g[2] + g[3]) or redis.call('XLEN', KEYS[1])
            if g[2] > 0 then return {count, redis.call('XPENDING', KEYS[1], ARGV[1])[2]} end
            local first = redis.call('XRANGE', KEYS[1], '(' .. g[1], '+', 'COUNT', 1)[1]
            return {count, first and first[1] or false}
            """
}
