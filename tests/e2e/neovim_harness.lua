-- What the Neovim scripts of tests/e2e/neovim.rs share (Neovim 0.7, Debian 12's: the API is
-- vim.lsp.start_client + vim.lsp.buf_attach_client). A script loads it with
-- dofile($BUILDD_NVIM_HARNESS), opens the fixture file with `buildd lsp` attached, and hands
-- its body to `main`, which writes "FAIL <why>" to $BUILDD_NVIM_OUT and exits non-zero (:cq)
-- on any error, or exits 0 after the body wrote its own report.

local M = {}

local out = os.getenv("BUILDD_NVIM_OUT")

function M.report(text)
  local f = assert(io.open(out, "w"))
  f:write(text)
  f:close()
end

-- Opens $BUILDD_NVIM_FILE and attaches a new `buildd lsp` client to it; returns the buffer
-- and the client's id.
function M.open_with_buildd()
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
  return bufnr, client_id
end

function M.main(body)
  local ok, err = pcall(body)
  if ok then
    vim.cmd("qa!")
  else
    M.report("FAIL " .. tostring(err))
    vim.cmd("cq")
  end
end

return M
