-- Neovim applying a quick fix of `buildd lsp`, for tests/e2e/neovim.rs. In Neovim 0.7
-- vim.lsp.buf.code_action() has no `apply` option and always asks with vim.ui.select, so the
-- script answers that prompt as a user would, picking the fix by its title; Neovim then
-- applies the WorkspaceEdit itself. The script saves the buffer, waits for the warning to go,
-- and writes "OK <title>" to $BUILDD_NVIM_OUT (neovim_harness.lua has the rest).

local harness = dofile(os.getenv("BUILDD_NVIM_HARNESS"))
local WANTED = "if this is intentional, prefix it with an underscore"

local function warning(bufnr)
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.source == "buildd" and d.message:find("unused variable: `unused`", 1, true) then
      return d
    end
  end
end

harness.main(function()
  local bufnr, client_id = harness.open_with_buildd()

  local found
  assert(vim.wait(180000, function()
    found = warning(bufnr)
    return found ~= nil
  end, 100), "no unused-variable warning from buildd within 180 s")

  -- On the warning, as a user puts the cursor there (rows 1-based, columns in bytes).
  vim.api.nvim_win_set_cursor(0, { found.lnum + 1, found.col })
  local chosen
  vim.ui.select = function(items, opts, on_choice)
    for i, item in ipairs(items) do
      -- 0.7 passes { client_id, action }; later releases { action = ..., ctx = ... }.
      local action = item.action or item[2]
      local title = action and action.title or ""
      if title:sub(1, #WANTED) == WANTED then
        chosen = title
        on_choice(item, i)
        return
      end
    end
    local titles = {}
    for _, item in ipairs(items) do
      table.insert(titles, (item.action or item[2] or {}).title or "?")
    end
    error("no action " .. WANTED .. " among: " .. table.concat(titles, " / "))
  end
  vim.lsp.buf.code_action()
  assert(vim.wait(60000, function()
    return chosen ~= nil and vim.api.nvim_buf_get_lines(bufnr, found.lnum, found.lnum + 1, false)[1]:find("_unused", 1, true) ~= nil
  end, 50), "the code action was not applied: " .. tostring(chosen))

  vim.cmd("write")
  assert(vim.wait(180000, function()
    return warning(bufnr) == nil
  end, 100), "the warning did not go after the fix was saved")
  harness.report("OK " .. chosen)
  vim.lsp.stop_client(client_id)
end)
