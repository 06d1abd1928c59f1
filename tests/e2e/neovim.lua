-- Neovim as a real LSP client of `buildd lsp`, for tests/e2e/neovim.rs. Written for Neovim 0.7
-- (Debian 12's), whose API is vim.lsp.start_client + vim.lsp.buf_attach_client. Opens the
-- fixture file, waits for buildd's diagnostic in vim.diagnostic.get(), writes what it found to
-- $BUILDD_NVIM_OUT, and exits 0; on any failure it writes why and exits non-zero (:cq).

local out = os.getenv("BUILDD_NVIM_OUT")

local function report(text)
  local f = assert(io.open(out, "w"))
  f:write(text)
  f:close()
end

local function run()
  local file = assert(os.getenv("BUILDD_NVIM_FILE"), "BUILDD_NVIM_FILE is not set")
  local root = assert(os.getenv("BUILDD_NVIM_ROOT"), "BUILDD_NVIM_ROOT is not set")
  local buildd = assert(os.getenv("BUILDD_NVIM_BIN"), "BUILDD_NVIM_BIN is not set")

  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local client_id = vim.lsp.start_client({
    name = "buildd",
    cmd = { buildd, "lsp" },
    root_dir = root,
    init_options = { stages = { "check" } },
  })
  assert(client_id, "vim.lsp.start_client did not start buildd lsp")
  assert(vim.lsp.buf_attach_client(bufnr, client_id), "cannot attach buildd to the buffer")

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
  report(string.format("OK %d %d %d %d %s %s", found.lnum, found.col, found.end_lnum, found.end_col, href, message))
  vim.lsp.stop_client(client_id)
end

local ok, err = pcall(run)
if ok then
  vim.cmd("qa!")
else
  report("FAIL " .. tostring(err))
  vim.cmd("cq")
end
