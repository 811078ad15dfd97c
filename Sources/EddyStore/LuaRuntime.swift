/// The topology-independent part of the generated Function library: helpers
/// and the reader of a state blob, driven by the `FEATURES` table that
/// `FunctionLibrary` generates in front of it.
///
/// It mirrors `FeatureEngine.forEachColumn` and the operators' `write`
/// functions in EddyCore exactly (same columns, same order, same null and 0
/// rules, same floating-point operations in the same order) and the number
/// and string formatting of `JSONWriter`. The blob layout is documented on
/// `WindowLayout` in EddyCore.
///
/// `FEATURES` entries (1-based Lua arrays):
/// - session: `{1, {5 column prefixes}, gap}`;
/// - window: `{2, prefix, aggregation, W, H, tile size}` with aggregation
///   1 count, 2 sum, 3 min, 4 max, 5 avg;
/// - last_n: `{3, prefix}`;
/// - the "More aggregations": `{4, code, {column prefixes}, W, H, ...}` with
///   code 1 distinct_count (then p), 2 percentile (then g, the quantiles and
///   their indices in ascending order; entries 9 and 10 are the reader's
///   cache of bucket value texts and its size),
///   3 first, 4 last, 5 variance, 6 stddev, 7 count_by (then top); `W` and
///   `H` 0 for a lifetime aggregate (also for windows);
/// - time_since: `{5, prefix}`.
/// A prefix is the column's JSON key with its separators: `,"name":`.
///
/// The library's top level runs without Redis' standard globals, so the
/// reader is built by `runtime()` on the first call and kept in an upvalue.
enum LuaRuntime {
    /// The runtime with a topology's derived columns (`DerivedLua.function`:
    /// helpers and `derived`, or `local derived = nil`) in place of the
    /// reader's `-- @DERIVED@` line.
    static func source(derived: String, parts: Bool = false) -> String {
        var reader = self.reader.replacing("-- @DERIVED@", with: derived)
        reader = parts ? PartsLua.apply(to: reader) : reader.replacing("-- @PARTS@\n", with: "")
        let body = reader.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n")
        return """
            -- Redis runs a library's top level without the standard globals
            -- (string, math, struct, ...), so the reader is built on first call.
            local function runtime()
            \(body)
              return features
            end

            local read_features
            local function features(keys, args)
              if read_features == nil then read_features = runtime() end
              return read_features(keys, args)
            end
            """
    }

    /// The body of `runtime()`: helpers and `features`, the reader.
    static let reader = #"""
        local unpack_ = struct.unpack
        local floor = math.floor
        local huge = math.huge
        local format, byte, sub, find, gsub = string.format, string.byte, string.sub, string.find, string.gsub
        local concat, sort = table.concat, table.sort
        local frexp, log, sqrt = math.frexp, math.log, math.sqrt

        -- K before the first event (Int64.min, exactly -2^63 as a double).
        local NO_KEY_TIME = -9223372036854775808
        -- Read times must be integers that doubles hold exactly.
        local MAX_T = 9007199254740992

        -- JSONWriter.int: 64-bit integers (exact below 2^53).
        local function int(v)
          return format('%d', v)
        end

        -- JSONWriter.double: integral values below 1e15 without a fraction,
        -- others as Swift's description: the fewest digits (15 to 17) that
        -- read back the same.
        local function number(v)
          if v == floor(v) and v > -1e15 and v < 1e15 then return format('%d', v) end
          -- A sum that overflowed is not a JSON number: null, as the engine writes.
          if v ~= v or v == huge or v == -huge then return 'null' end
          -- Swift's description writes integral values up to 2^53 in full,
          -- with a fraction: 1000000000000000.0 (beyond: 1e+16).
          if v == floor(v) and v >= -MAX_T and v <= MAX_T then return format('%d', v) .. '.0' end
          local a = v < 0 and -v or v
          if a < 2.2250738585072014e-308 then
            -- Subnormal: the shortest digits may be fewer than 15.
            local p = 0
            local s = format('%.0e', v)
            while tonumber(s) ~= v do
              p = p + 1
              s = format('%.' .. p .. 'e', v)
            end
            return s
          end
          -- Normal: 15 digits read back exactly only when the shortest
          -- form has at most 15 (then %g's trailing-zero stripping gives
          -- it); else 16 or 17.
          local p = 15
          local s = format('%.15g', v)
          if tonumber(s) ~= v then
            p = 16
            s = format('%.16g', v)
            if tonumber(s) ~= v then
              p = 17
              s = format('%.17g', v)
            end
          end
          -- Swift writes values above 2^53 with an exponent (1e+16), where
          -- %g still writes all the digits.
          if a > MAX_T and not find(s, 'e', 1, true) then
            s = gsub(format('%.' .. (p - 1) .. 'e', v), '%.?0+e', 'e')
          end
          return s
        end

        -- JSONWriter.string: escapes '"', '\' and control characters; other
        -- bytes (UTF-8 included) are copied.
        local ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
        local NEEDS_ESCAPE = '[%z\1-\31"\\]'
        local function escape(c)
          return ESCAPES[c] or format('\\u%04x', byte(c))
        end
        local function jstring(s)
          if find(s, NEEDS_ESCAPE) then s = gsub(s, NEEDS_ESCAPE, escape) end
          return '"' .. s .. '"'
        end

        -- floor(t / h) * h, exact for integral |t| <= 2^53.
        local function hop_start(t, h)
          local q = floor(t / h) * h
          while q > t do q = q - h end
          while q + h <= t do q = q + h end
          return q
        end

        -- Session section at pos: start, last, events (WindowLayout docs).
        local function session(s, pos, f, t, out, n)
          local start, last, events = unpack_('<i8i8i8', s, pos)
          local c = f[2]
          if events == 0 then
            out[n + 1] = c[1] .. 'null'
            out[n + 2] = c[2] .. 'null'
            out[n + 3] = c[3] .. '0'
            out[n + 4] = c[4] .. 'null'
            out[n + 5] = c[5] .. 'false'
          else
            out[n + 1] = c[1] .. int(start)
            out[n + 2] = c[2] .. int(last)
            out[n + 3] = c[3] .. int(events)
            out[n + 4] = c[4] .. int(last - start)
            out[n + 5] = c[5] .. ((t - last <= f[3]) and 'true' or 'false')
          end
          return pos + 24, n + 5
        end

        -- Window section at pos: u32 tile count, tiles ascending by start;
        -- folds the tiles with floor(T/H)*H - W < start <= floor(T/H)*H.
        local function window(s, pos, f, t, out, n)
          local tiles = unpack_('<I4', s, pos)
          local agg, size = f[3], f[6]
          local lo, hi = -huge, huge
          if f[5] ~= 0 then
            hi = hop_start(t, f[5])
            lo = hi - f[4]
          end
          local count, acc = 0, 0.0
          local p = pos + 4
          for _ = 1, tiles do
            local start = unpack_('<i8', s, p)
            if start > lo and start <= hi then
              if agg == 1 then
                count = count + unpack_('<i8', s, p + 8)
              elseif agg == 2 then
                acc = acc + unpack_('<d', s, p + 8)
                count = count + 1
              elseif agg == 3 then
                local v = unpack_('<d', s, p + 8)
                if count == 0 or v < acc then acc = v end
                count = count + 1
              elseif agg == 4 then
                local v = unpack_('<d', s, p + 8)
                if count == 0 or v >= acc then acc = v end
                count = count + 1
              else
                local sum, c = unpack_('<di8', s, p + 8)
                acc = acc + sum
                count = count + c
              end
            end
            p = p + size
          end
          local text
          if agg == 1 then
            text = int(count)
          elseif agg == 2 then
            text = number(acc)
          elseif count == 0 then
            text = 'null'
          elseif agg == 5 then
            text = number(acc / count)
          else
            text = number(acc)
          end
          out[n + 1] = f[2] .. text
          return p, n + 1
        end

        -- last_n section at pos: u32 entry bytes, u16 entry count, entries
        -- newest first: i64 ts, u16 length, tag byte and value bytes.
        local TAG_S, TAG_T, TAG_F = byte('s'), byte('t'), byte('f')
        local function last_n(s, pos, f, out, n)
          local bytes, entries = unpack_('<I4H', s, pos)
          local values = {}
          local p = pos + 6
          for i = 1, entries do
            local length = unpack_('<H', s, p + 8)
            local tag = byte(s, p + 10)
            local body = sub(s, p + 11, p + 9 + length)
            if tag == TAG_S then
              values[i] = jstring(body)
            elseif tag == TAG_T then
              values[i] = 'true'
            elseif tag == TAG_F then
              values[i] = 'false'
            else
              values[i] = body
            end
            p = p + 10 + length
          end
          out[n + 1] = f[2] .. '[' .. concat(values, ',') .. ']'
          return pos + 6 + bytes, n + 1
        end

        -- A tagged value (last_n, first, last) as JSON.
        local function tagged(tag, body)
          if tag == TAG_S then return jstring(body) end
          if tag == TAG_T then return 'true' end
          if tag == TAG_F then return 'false' end
          return body
        end

        -- The tiles of a "More aggregations" section at pos that a read at t
        -- folds, ascending by start: their payload positions and sizes.
        -- (Two tables reused by every section of a read: each feature is
        -- done with them before the next one asks.)
        local TILE_POS, TILE_SIZE = {}, {}
        local function tiles_at(s, pos, f, t)
          local payload = unpack_('<I4', s, pos)
          local lo, hi = -huge, huge
          if f[5] ~= 0 then
            hi = hop_start(t, f[5])
            lo = hi - f[4]
          end
          local ps, sizes, n = TILE_POS, TILE_SIZE, 0
          local p, e = pos + 4, pos + 4 + payload
          while p < e do
            local start, size = unpack_('<i8I4', s, p)
            if start > lo and start <= hi then
              n = n + 1
              ps[n] = p + 12
              sizes[n] = size
            end
            p = p + 12 + size
          end
          return ps, sizes, n, e
        end

        -- M[j] = max(M[j], rho) for the hash hi * 2^32 + lo (registers 0-based).
        local function add_register(regs, p, lo, hi)
          local shift = 2 ^ (32 - p)
          local j = floor(hi / shift)
          local rem = hi % shift
          local rho
          if rem > 0 then
            local _, e = frexp(rem)
            rho = 32 - p - e + 1
          elseif lo > 0 then
            local _, e = frexp(lo)
            rho = 32 - p + 32 - e + 1
          else
            rho = 64 - p + 1
          end
          if rho > regs[j] then regs[j] = rho end
        end

        local function distinct(s, ps, n, p)
          local seen, members, count = {}, {}, 0
          local sets = true
          for i = 1, n do
            local q = ps[i]
            local c = unpack_('<H', s, q)
            if c == 65535 then
              sets = false
            else
              for k = 0, c - 1 do
                local h = sub(s, q + 2 + k * 8, q + 9 + k * 8)
                if not seen[h] then
                  seen[h] = true
                  count = count + 1
                  members[count] = q + 2 + k * 8
                end
              end
            end
          end
          if sets then return count end
          local m = 2 ^ p
          local regs = {}
          for j = 0, m - 1 do regs[j] = 0 end
          for i = 1, count do
            local lo, hi = unpack_('<I4I4', s, members[i])
            add_register(regs, p, lo, hi)
          end
          for i = 1, n do
            local q = ps[i]
            if unpack_('<H', s, q) == 65535 then
              local base = q + 2
              for j0 = 0, m - 1, 1024 do
                local last = j0 + 1023
                if last > m - 1 then last = m - 1 end
                local chunk = {byte(s, base + j0, base + last)}
                for k = 1, #chunk do
                  local v = chunk[k]
                  if v > regs[j0 + k - 1] then regs[j0 + k - 1] = v end
                end
              end
            end
          end
          local sum, zeros = 0.0, 0
          for j = 0, m - 1 do
            local r = regs[j]
            sum = sum + 2 ^ (-r)
            if r == 0 then zeros = zeros + 1 end
          end
          local alpha = 0.7213 / (1 + 1.079 / m)
          local e = alpha * m * m / sum
          if e <= 2.5 * m and zeros > 0 then e = m * log(m / zeros) end
          return floor(e + 0.5)
        end

        -- struct formats for n buckets: '<' and n times 'i4I4'.
        local BUCKET_FORMATS = {}
        local function bucket_format(n)
          local fmt = BUCKET_FORMATS[n]
          if not fmt then
            fmt = '<' .. string.rep('i4I4', n)
            BUCKET_FORMATS[n] = fmt
          end
          return fmt
        end

        local BIAS = 33554432
        local SHIFT = 67108864
        local function bucket_value(key, g)
          if key == 0 then return 0 end
          if key > 0 then return 2 * g ^ (key - BIAS) / (g + 1) end
          return -(2 * g ^ (-BIAS - key) / (g + 1))
        end

        -- Bytewise order (Lua's < on strings follows the locale).
        local function bytes_less(a, b)
          local la, lb = #a, #b
          local m = la < lb and la or lb
          for i = 1, m do
            local x, y = byte(a, i), byte(b, i)
            if x ~= y then return x < y end
          end
          return la < lb
        end

        local function count_by(s, ps, n, top)
          local counts, texts, nt = {}, {}, 0
          for i = 1, n do
            local q = ps[i]
            local other, entries = unpack_('<I4H', s, q)
            if other > 0 then
              local text = '__other__'
              local have = counts[text]
              if have then counts[text] = have + other else counts[text] = other; nt = nt + 1; texts[nt] = text end
            end
            local c = q + 6
            for _ = 1, entries do
              local count, length = unpack_('<I4H', s, c)
              local text = sub(s, c + 6, c + 5 + length)
              local have = counts[text]
              if have then counts[text] = have + count else counts[text] = count; nt = nt + 1; texts[nt] = text end
              c = c + 6 + length
            end
          end
          if nt > 1 then
            sort(texts, function(a, b)
              local ca, cb = counts[a], counts[b]
              if ca ~= cb then return ca > cb end
              return bytes_less(a, b)
            end)
          end
          local parts = {}
          for i = 1, (nt < top and nt or top) do
            parts[i] = jstring(texts[i]) .. ':' .. int(counts[texts[i]])
          end
          return '{' .. concat(parts, ',') .. '}'
        end

        -- A bucket's value text depends only on its key: formatting a
        -- 17-digit double costs more than the rest of the read, so the
        -- texts are kept across reads (at most 4096 per feature).
        local function bucket_text(f, key)
          local cache = f[9]
          if not cache then
            cache = {}
            f[9] = cache
            f[10] = 0
          end
          local text = cache[key]
          if not text then
            text = number(bucket_value(key, f[6]))
            if f[10] < 4096 then
              cache[key] = text
              f[10] = f[10] + 1
            end
          end
          return text
        end

        -- Every quantile column null (no value in the window): the three
        -- percentile reads below end so when their counts sum to 0.
        local function null_quantiles(c, nq, out, n)
          for i = 1, nq do out[n + i] = c[i] .. 'null' end
          return n + nq
        end

        -- Percentile over the tiles at ps (TiledLayout: u32 n, then n
        -- (i32 key, u32 count) ascending by key), every tile in one sort.
        -- For tiles of more than MERGE_BUCKETS buckets or more than
        -- MERGE_TILES tiles; `percentile` below merges the others.
        local function percentile_sorted(s, ps, count, f, c, out, n)
          -- Every tile's (key, count) as one number, (key + 2^26) * 2^26 +
          -- count (exact: |key| < 2^26, counts below 2^26), sorted: equal
          -- keys end up adjacent, so one cumulative walk over the sorted
          -- list reads every quantile (ascending ranks) without a table of
          -- sums. A count of 2^26 or more takes the table of sums instead.
          local pairs_, np, total, big = {}, 0, 0, false
          for i = 1, count do
            local q = ps[i]
            local nb = unpack_('<I4', s, q)
            local p = q + 4
            while nb > 0 do
              local chunk = nb < 1000 and nb or 1000
              local v = {unpack_(bucket_format(chunk), s, p)}
              for k = 1, 2 * chunk, 2 do
                local cnt = v[k + 1]
                if cnt >= SHIFT then big = true end
                np = np + 1
                pairs_[np] = (v[k] + SHIFT) * SHIFT + cnt
                total = total + cnt
              end
              nb = nb - chunk
              p = p + 8 * chunk
            end
          end
          local qs = f[7]
          local nq = #qs
          if total == 0 then return null_quantiles(c, nq, out, n) end
          local keys, counts
          if big then
            -- (Read the tiles again: these counts do not fit the encoding.)
            keys, counts = {}, {}
            local nk = 0
            for i = 1, count do
              local q = ps[i]
              local nb = unpack_('<I4', s, q)
              for b = 0, nb - 1 do
                local key, cnt = unpack_('<i4I4', s, q + 4 + 8 * b)
                if counts[key] then counts[key] = counts[key] + cnt else nk = nk + 1; keys[nk] = key; counts[key] = cnt end
              end
            end
            sort(keys)
          elseif count > 1 then
            sort(pairs_)
          end
          -- Quantiles in ascending rank, each at the first bucket whose
          -- cumulative count exceeds floor(q * (n - 1)).
          local order = f[8]
          local k, cum, key = 0, 0, 0
          for j = 1, nq do
            local i = order[j]
            local rank = floor(qs[i] * (total - 1))
            while cum <= rank do
              k = k + 1
              if big then
                key = keys[k]
                cum = cum + counts[key]
              else
                local x = pairs_[k]
                key = floor(x / SHIFT)
                cum = cum + (x - key * SHIFT)
                key = key - SHIFT
              end
            end
            out[n + i] = c[i] .. bucket_text(f, key)
          end
          return n + nq
        end

        -- Percentile read by merging the tiles' ascending lists from the
        -- nearer end: ranks in the lower half walk up from the smallest
        -- key, the others down from the largest, so a read visits about
        -- half the buckets and sorts nothing. Same quantile rule as the
        -- sort: the first bucket, ascending, whose cumulative count exceeds
        -- floor(q * (total - 1)). Why: in Redis' Lua every VM instruction
        -- costs ~70 machine instructions, and table.sort of every bucket
        -- was ~120k of the ~330k Redis instructions of a fraud read's
        -- percentile (callgrind); the lists are already sorted. Up to four
        -- lists are held in locals (a loop over the lists per step cost
        -- three times as many instructions); more tiles take `percentile_dense`.
        local MERGE_BUCKETS = 1000
        local TILE_BUCKETS, TILE_N, EMPTY = {}, {}, {}
        -- Percentile over more than four tiles (each tile's list too short to
        -- merge in locals): every bucket's count summed into a table indexed
        -- by key, then the key range lo..hi walked from the nearer end as in
        -- `percentile`. Why: decoding and summing ~100 buckets and walking the
        -- range costs less than sorting them (a fraud read over a full 24h/2h
        -- window, 12 tiles, ~100 buckets: 825k -> 713k Redis instructions,
        -- callgrind). Taken when the keys' range is at most DENSE_SPAN times
        -- the bucket count (+64): values of one sign within a few decades;
        -- wider ranges (mixed signs, 1e-12 beside 1e15) keep the sort.
        local DENSE_SPAN = 8
        -- From `key` (not counted again) towards `stop` by `step`, adding
        -- the sums found to `cum` until it exceeds `limit`: the key where it
        -- did and the new count (`key`, `cum` unchanged when it already did).
        local function walk_sums(sums, key, stop, step, cum, limit)
          if cum > limit then return key, cum end
          for k = key + step, stop, step do
            local x = sums[k]
            if x then
              cum = cum + x
              if cum > limit then return k, cum end
            end
          end
          return key, cum
        end
        local function percentile_dense(s, ps, count, f, c, out, n)
          -- One pass: each tile's buckets decoded (their count from the
          -- tile's size, 4 + 8 per bucket) and summed by key at once
          -- (a fraud read at 12 tiles: 715k -> 689k Redis instructions
          -- against decoding every tile first, then summing).
          local sizes = TILE_SIZE
          local sums, lo, hi, nbs, total = {}, huge, -huge, 0, 0
          for i = 1, count do
            local nb = (sizes[i] - 4) / 8
            if nb > MERGE_BUCKETS then return percentile_sorted(s, ps, count, f, c, out, n) end
            if nb > 0 then
              local v = {unpack_(bucket_format(nb), s, ps[i] + 4)}
              if v[1] < lo then lo = v[1] end
              if v[2 * nb - 1] > hi then hi = v[2 * nb - 1] end
              nbs = nbs + nb
              for k = 1, 2 * nb, 2 do
                local key, cnt = v[k], v[k + 1]
                local x = sums[key]
                if x then sums[key] = x + cnt else sums[key] = cnt end
                total = total + cnt
              end
            end
          end
          if nbs > 0 and hi - lo + 1 > DENSE_SPAN * nbs + 64 then return percentile_sorted(s, ps, count, f, c, out, n) end
          local qs, order = f[7], f[8]
          local nq = #qs
          if total == 0 then return null_quantiles(c, nq, out, n) end
          local half = (total - 1) / 2
          local key, cum = lo - 1, 0
          for j = 1, nq do
            local i = order[j]
            local rank = floor(qs[i] * (total - 1))
            if rank <= half then
              key, cum = walk_sums(sums, key, hi, 1, cum, rank)
              out[n + i] = c[i] .. bucket_text(f, key)
            end
          end
          key, cum = hi + 1, 0
          for j = nq, 1, -1 do
            local i = order[j]
            local rank = floor(qs[i] * (total - 1))
            if rank > half then
              local above = total - 1 - rank
              key, cum = walk_sums(sums, key, lo, -1, cum, above)
              out[n + i] = c[i] .. bucket_text(f, key)
            end
          end
          return n + nq
        end

        local function percentile(s, ps, count, f, c, out, n)
          if count > 4 then return percentile_dense(s, ps, count, f, c, out, n) end
          local lists, sizes = TILE_BUCKETS, TILE_N
          local total = 0
          for i = 1, count do
            local q = ps[i]
            local nb = unpack_('<I4', s, q)
            if nb > MERGE_BUCKETS then return percentile_sorted(s, ps, count, f, c, out, n) end
            local v = nb > 0 and {unpack_(bucket_format(nb), s, q + 4)} or EMPTY
            for k = 2, 2 * nb, 2 do total = total + v[k] end
            lists[i] = v
            sizes[i] = 2 * nb
          end
          for i = count + 1, 4 do
            lists[i] = EMPTY
            sizes[i] = 0
          end
          local qs, order = f[7], f[8]
          local nq = #qs
          if total == 0 then return null_quantiles(c, nq, out, n) end
          local half = (total - 1) / 2
          -- Lists hold a key at odd index h and its count at h + 1.
          local l1, l2, l3, l4 = lists[1], lists[2], lists[3], lists[4]
          local n1, n2, n3, n4 = sizes[1], sizes[2], sizes[3], sizes[4]
          -- Up from the smallest key (an exhausted list's head is huge).
          local h1, h2, h3, h4 = 1, 1, 1, 1
          local k1 = n1 > 0 and l1[1] or huge
          local k2 = n2 > 0 and l2[1] or huge
          local k3 = n3 > 0 and l3[1] or huge
          local k4 = n4 > 0 and l4[1] or huge
          local cum, key = 0, 0
          for j = 1, nq do
            local i = order[j]
            local rank = floor(qs[i] * (total - 1))
            if rank <= half then
              while cum <= rank do
                if k1 <= k2 and k1 <= k3 and k1 <= k4 then
                  key = k1; cum = cum + l1[h1 + 1]; h1 = h1 + 2
                  k1 = h1 < n1 and l1[h1] or huge
                elseif k2 <= k3 and k2 <= k4 then
                  key = k2; cum = cum + l2[h2 + 1]; h2 = h2 + 2
                  k2 = h2 < n2 and l2[h2] or huge
                elseif k3 <= k4 then
                  key = k3; cum = cum + l3[h3 + 1]; h3 = h3 + 2
                  k3 = h3 < n3 and l3[h3] or huge
                else
                  key = k4; cum = cum + l4[h4 + 1]; h4 = h4 + 2
                  k4 = h4 < n4 and l4[h4] or huge
                end
              end
              out[n + i] = c[i] .. bucket_text(f, key)
            end
          end
          -- Down from the largest key: the bucket at ascending rank r is the
          -- first, descending, whose cumulative count exceeds total - 1 - r.
          h1, h2, h3, h4 = n1 - 1, n2 - 1, n3 - 1, n4 - 1
          k1 = h1 > 0 and l1[h1] or -huge
          k2 = h2 > 0 and l2[h2] or -huge
          k3 = h3 > 0 and l3[h3] or -huge
          k4 = h4 > 0 and l4[h4] or -huge
          cum = 0
          for j = nq, 1, -1 do
            local i = order[j]
            local rank = floor(qs[i] * (total - 1))
            if rank > half then
              local above = total - 1 - rank
              while cum <= above do
                if k1 >= k2 and k1 >= k3 and k1 >= k4 then
                  key = k1; cum = cum + l1[h1 + 1]; h1 = h1 - 2
                  k1 = h1 > 0 and l1[h1] or -huge
                elseif k2 >= k3 and k2 >= k4 then
                  key = k2; cum = cum + l2[h2 + 1]; h2 = h2 - 2
                  k2 = h2 > 0 and l2[h2] or -huge
                elseif k3 >= k4 then
                  key = k3; cum = cum + l3[h3 + 1]; h3 = h3 - 2
                  k3 = h3 > 0 and l3[h3] or -huge
                else
                  key = k4; cum = cum + l4[h4 + 1]; h4 = h4 - 2
                  k4 = h4 > 0 and l4[h4] or -huge
                end
              end
              out[n + i] = c[i] .. bucket_text(f, key)
            end
          end
          return n + nq
        end

        -- A "More aggregations" section at pos (TiledLayout in EddyCore).
        local function tiled(s, pos, f, t, out, n)
          local code, c = f[2], f[3]
          local ps, sizes, count, e = tiles_at(s, pos, f, t)
          if code == 1 then
            out[n + 1] = c[1] .. int(distinct(s, ps, count, f[6]))
            return e, n + 1
          elseif code == 2 then
            return e, percentile(s, ps, count, f, c, out, n)
          elseif code == 3 or code == 4 then
            local text = 'null'
            if count > 0 then
              local i = code == 3 and 1 or count
              local q = ps[i]
              text = tagged(byte(s, q + 8), sub(s, q + 9, q + sizes[i] - 1))
            end
            out[n + 1] = c[1] .. text
            return e, n + 1
          elseif code == 5 or code == 6 then
            local text = 'null'
            if count > 0 then
              local tn, mean, m2 = unpack_('<i8dd', s, ps[1])
              for i = 2, count do
                local nb, mb, m2b = unpack_('<i8dd', s, ps[i])
                local na = tn
                local total = na + nb
                local d = mb - mean
                mean = mean + d * nb / total
                m2 = m2 + m2b + d * d * na * nb / total
                tn = total
              end
              local variance = m2 / tn
              text = number(code == 5 and variance or sqrt(variance))
            end
            out[n + 1] = c[1] .. text
            return e, n + 1
          else
            out[n + 1] = c[1] .. count_by(s, ps, count, f[6])
            return e, n + 1
          end
        end

        -- time_since section at pos: the greatest kept ts.
        local function time_since(s, pos, f, t, out, n)
          local ts = unpack_('<i8', s, pos)
          out[n + 1] = f[2] .. (ts == NO_KEY_TIME and 'null' or int(t - ts))
          return pos + 8, n + 1
        end
        -- @DERIVED@
        -- @PARTS@

        -- The features of KEYS[1] read at T = ARGV[1] (epoch ms; default:
        -- the server clock) as one JSON object, or nil for no such entity.
        local function features(keys, args)
          local got = redis.call('HMGET', keys[1], '_state', '_fp')
          local s = got[1]
          if not s then return nil end
          if got[2] and got[2] ~= FINGERPRINT then
            return redis.error_reply('EDDYSTATE ' .. keys[1] .. ' holds state of features fingerprint ' ..
              got[2] .. ', this library reads ' .. FINGERPRINT .. ' (topology ' .. TOPOLOGY .. ')')
          end
          local t
          if args[1] ~= nil then
            t = tonumber(args[1])
            if not t or t ~= floor(t) or t < -MAX_T or t > MAX_T then
              return redis.error_reply('ERR read time must be integer epoch milliseconds, got ' .. args[1])
            end
          else
            local now = redis.call('TIME')
            t = tonumber(now[1]) * 1000 + floor(tonumber(now[2]) / 1000)
          end
          local key_length = unpack_('<H', s, 1)
          local k = unpack_('<i8', s, 3 + key_length)
          local out = {'{"key":', jstring(sub(s, 3, 2 + key_length)), ',"key_time":',
            k == NO_KEY_TIME and 'null' or int(k)}
          local n = 4
          local pos = 11 + key_length
          for i = 1, #FEATURES do
            local f = FEATURES[i]
            local kind = f[1]
            if kind == 1 then
              pos, n = session(s, pos, f, t, out, n)
            elseif kind == 2 then
              pos, n = window(s, pos, f, t, out, n)
            elseif kind == 3 then
              pos, n = last_n(s, pos, f, out, n)
            elseif kind == 4 then
              pos, n = tiled(s, pos, f, t, out, n)
            else
              pos, n = time_since(s, pos, f, t, out, n)
            end
          end
          if derived then n = derived(out, n) end
          out[n + 1] = '}'
          return concat(out)
        end
        """#
}
