import EddyCore

/// The Function's side of `parts: per_partition` (SEMANTICS.md, "Keys
/// spread over partitions"): an entity's hash holds one part per source
/// partition, field `_p:<topic>:<partition>` (`EntityLayout.partFieldPrefix`),
/// each written only by that partition's owner under the fence
/// `_o:<topic>:<partition>`. The reader gathers the parts and merges them
/// into one state blob exactly as `FeatureEngine.mergeParts` does, then
/// reads that blob as any other. Generated only for such entities: the
/// reader of every other topology is unchanged.
enum PartsLua {
    /// Replaces the reader's `HMGET` of `_state` with the gathering and
    /// merging of the parts.
    static func apply(to reader: String) -> String {
        let single = """
            local got = redis.call('HMGET', keys[1], '_state', '_fp')
              local s = got[1]
              if not s then return nil end
            """
        precondition(reader.contains(single), "the reader's state read changed")
        let parts = """
            local all = redis.call('HGETALL', keys[1])
              local parts, fp = {}, nil
              for i = 1, #all, 2 do
                local name = all[i]
                if sub(name, 1, 3) == '_p:' then
                  parts[#parts + 1] = {tonumber(string.match(name, ':(%d+)$')), all[i + 1]}
                elseif name == '_fp' then
                  fp = all[i + 1]
                end
              end
              if #parts == 0 then return nil end
              local got = {nil, fp}
              local s = merge_parts(parts)
            """
        return reader.replacing(single, with: parts).replacing("-- @PARTS@", with: mergeFunction)
    }

    /// `merge_parts(parts)`: parts are `{partition, blob}`; returns the merged blob.
    static let mergeFunction = #"""
        -- The parts of one key merged into one blob (FeatureEngine.mergeParts).
        local pack_ = struct.pack
        local function tile_less(a, b)
          if a[1] ~= b[1] then return a[1] < b[1] end
          return a[2] < b[2]
        end
        local function merge_parts(parts)
          sort(parts, function(a, b) return a[1] < b[1] end)
          local np = #parts
          local pos = {}
          local k = NO_KEY_TIME
          local key
          for i = 1, np do
            local s = parts[i][2]
            local kl = unpack_('<H', s, 1)
            if i == 1 then key = sub(s, 3, 2 + kl) end
            local ki = unpack_('<i8', s, 3 + kl)
            if ki > k then k = ki end
            pos[i] = 11 + kl
          end
          local out = {pack_('<H', #key), key, pack_('<i8', k)}
          for fi = 1, #FEATURES do
            local f = FEATURES[fi]
            local kind = f[1]
            if kind == 1 then
              -- session: from the greatest (last, start, partition), absorb overlaps.
              local ss = {}
              for i = 1, np do
                local st, la, ev = unpack_('<i8i8i8', parts[i][2], pos[i])
                if ev > 0 then ss[#ss + 1] = {st, la, ev, parts[i][1]} end
                pos[i] = pos[i] + 24
              end
              local b
              for _, x in ipairs(ss) do
                if not b or x[2] > b[2] or (x[2] == b[2] and (x[1] > b[1] or (x[1] == b[1] and x[4] > b[4]))) then b = x end
              end
              if not b then
                out[#out + 1] = pack_('<i8i8i8', 0, 0, 0)
              else
                local st, la, ev, gap = b[1], b[2], b[3], f[3]
                local used = {[b[4]] = true}
                local changed = true
                while changed do
                  changed = false
                  for _, x in ipairs(ss) do
                    if not used[x[4]] and x[2] >= st - gap and x[1] <= la + gap then
                      if x[1] < st then st = x[1] end
                      if x[2] > la then la = x[2] end
                      ev = ev + x[3]
                      used[x[4]] = true
                      changed = true
                    end
                  end
                end
                out[#out + 1] = pack_('<i8i8i8', st, la, ev)
              end
            elseif kind == 2 then
              -- window tiles: every part's, by (start, partition).
              local size = f[6]
              local tiles = {}
              for i = 1, np do
                local s = parts[i][2]
                local n = unpack_('<I4', s, pos[i])
                for j = 0, n - 1 do
                  local at = pos[i] + 4 + j * size
                  tiles[#tiles + 1] = {unpack_('<i8', s, at), i, sub(s, at, at + size - 1)}
                end
                pos[i] = pos[i] + 4 + n * size
              end
              sort(tiles, tile_less)
              out[#out + 1] = pack_('<I4', #tiles)
              for _, t in ipairs(tiles) do out[#out + 1] = t[3] end
            elseif kind == 3 then
              -- last_n: by (ts, partition, arrival), greatest first.
              local es = {}
              for i = 1, np do
                local s = parts[i][2]
                local payload, count = unpack_('<I4H', s, pos[i])
                local c = pos[i] + 6
                for r = 1, count do
                  local ts, len = unpack_('<i8H', s, c)
                  es[#es + 1] = {ts, parts[i][1], r, sub(s, c, c + 9 + len)}
                  c = c + 10 + len
                end
                pos[i] = pos[i] + 6 + payload
              end
              sort(es, function(a, b)
                if a[1] ~= b[1] then return a[1] > b[1] end
                if a[2] ~= b[2] then return a[2] > b[2] end
                return a[3] < b[3]
              end)
              local taken, seen, total = {}, {}, 0
              for _, e in ipairs(es) do
                if #taken >= f[3] then break end
                local v = sub(e[4], 11)
                if not (f[4] and seen[v]) then
                  taken[#taken + 1] = e[4]
                  seen[v] = true
                  total = total + #e[4]
                end
              end
              out[#out + 1] = pack_('<I4H', total, #taken)
              for _, t in ipairs(taken) do out[#out + 1] = t end
            elseif kind == 4 then
              -- More aggregations: tiles by (start, partition); first/last keep one per start.
              local tiles = {}
              for i = 1, np do
                local s = parts[i][2]
                local payload = unpack_('<I4', s, pos[i])
                local c = pos[i] + 4
                local e = c + payload
                while c < e do
                  local st, size = unpack_('<i8I4', s, c)
                  tiles[#tiles + 1] = {st, i, sub(s, c, c + 11 + size)}
                  c = c + 12 + size
                end
                pos[i] = e
              end
              sort(tiles, tile_less)
              if f[2] == 3 or f[2] == 4 then
                local kept = {}
                for _, t in ipairs(tiles) do
                  local prev = kept[#kept]
                  if prev and prev[1] == t[1] then
                    local a = unpack_('<i8', prev[3], 13)
                    local b = unpack_('<i8', t[3], 13)
                    if (f[2] == 3 and b < a) or (f[2] == 4 and b >= a) then kept[#kept] = t end
                  else
                    kept[#kept + 1] = t
                  end
                end
                tiles = kept
              end
              local total = 0
              for _, t in ipairs(tiles) do total = total + #t[3] end
              out[#out + 1] = pack_('<I4', total)
              for _, t in ipairs(tiles) do out[#out + 1] = t[3] end
            else
              -- time_since: the greatest kept ts.
              local latest = NO_KEY_TIME
              for i = 1, np do
                local v = unpack_('<i8', parts[i][2], pos[i])
                if v > latest then latest = v end
                pos[i] = pos[i] + 8
              end
              out[#out + 1] = pack_('<i8', latest)
            end
          end
          return concat(out)
        end
        """#
}
