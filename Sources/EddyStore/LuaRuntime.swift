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
/// - last_n: `{3, prefix}`.
/// A prefix is the column's JSON key with its separators: `,"name":`.
///
/// The library's top level runs without Redis' standard globals, so the
/// reader is built by `runtime()` on the first call and kept in an upvalue.
enum LuaRuntime {
    /// The runtime with a topology's derived columns (`DerivedLua.function`:
    /// helpers and `derived`, or `local derived = nil`) in place of the
    /// reader's `-- @DERIVED@` line.
    static func source(derived: String) -> String {
        let reader = self.reader.replacing("-- @DERIVED@", with: derived)
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
        local concat = table.concat

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
          local hi = hop_start(t, f[5])
          local lo = hi - f[4]
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

        -- @DERIVED@

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
            else
              pos, n = last_n(s, pos, f, out, n)
            end
          end
          if derived then n = derived(out, n) end
          out[n + 1] = '}'
          return concat(out)
        end
        """#
}
