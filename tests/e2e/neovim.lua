-- Neovim as a real LSP client of `buildd lsp`, for tests/e2e/neovim.rs: opens the fixture
-- file, waits for buildd's diagnostic in vim.diagnostic.get(), and writes what it found to
-- $BUILDD_NVIM_OUT (neovim_harness.lua has the rest).

local harness = dofile(os.getenv("BUILDD_NVIM_HARNESS"))

harness.main(function()
  local bufnr, client_id = harness.open_with_buildd()
  local found
  local ok = vim.wait(180000, function()
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      if d.source == "buildd" and d.message:find("mismatched types", 1, true) then
        found = d
        return true
      end
    end
    return false
  end, 100)
  assert(ok, "no buildd diagnostic in vim.diagnostic.get() within 180 s")
  local message = found.message:gsub("\n", " | ")
  local lsp = (found.user_data or {}).lsp or {}
  local href = (lsp.codeDescription or {}).href or "none"
  harness.report(string.format("OK %d %d %d %d %s %s", found.lnum, found.col, found.end_lnum, found.end_col, href, message))
  vim.lsp.stop_client(client_id)
end)
