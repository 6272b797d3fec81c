/*
 * asyncz dashboard: the page's own behaviour.
 *
 * The dashboard is served with a Content-Security-Policy whose script-src is
 * 'self' only, so everything here avoids eval, the Function constructor,
 * inline handlers and string timers. Alpine is the CSP build: templates
 * reference the components below by name (x-data="asynczShell") and call
 * their methods by name (x-on:click="toggleFilters"); no expression is
 * compiled at run time.
 *
 * Load order (all with `defer`, in this order): htmx, toastify, this file,
 * Alpine. Alpine must come last so the "alpine:init" listener below is in place
 * when it starts; htmx must come first so its config can be adjusted before it
 * processes the page.
 *
 * Markup contracts (plain delegated listeners, no Alpine needed):
 *   data-dismiss-target="ID"      click hides the element with that id
 *   data-password-toggle="ID"     click flips that input between password/text;
 *                                 optional data-label-show / data-label-hide
 *   data-confirm="Question?"      on a button or link: asked on click; on a
 *                                 form: asked on submit; "Cancel" stops it
 *   HX-Trigger: {"asyncz:toast": {"message": "...", "level": "success"}}
 *                                 a response header htmx turns into a toast
 *                                 (levels: info, success, warning, error)
 * x-data="asynczShell" (page frame):
 *   toggleSidebar, sidebarCollapsed, shellClass; the toggle button carries
 *   data-sidebar-toggle (kept in step: aria-expanded)
 * x-data="asynczTasks" (tasks page):
 *   toggleFilters/filtersOpen, toggleCreate/closeCreate/createOpen,
 *   toggleDensity/changeDensity/density/isCompact/densityClass,
 *   selectedIds/selectedCount/hasSelection/clearSelection;
 *   data-select-all              the header checkbox
 *   data-select-row, or name="row"  one checkbox per task row (value = id)
 *   input[name="ids"]            kept filled with the JSON array of ids
 *   data-bulk-action / data-bulk-form  disabled / refused with no selection
 */
(function () {
  "use strict";

  var STORAGE_SIDEBAR = "asyncz.dashboard.sidebar";
  var STORAGE_DENSITY = "asyncz.dashboard.density";
  var TOAST_LEVELS = ["info", "success", "warning", "error"];
  // The tasks table's selection controls (see asynczTasks).
  var ROW_BOXES = 'input[type="checkbox"][data-select-row], input[type="checkbox"][name="row"]';
  var BULK_BUTTONS = "[data-bulk-action], [data-bulk-form] [type='submit']";

  function isBulkForm(form) {
    return form.hasAttribute("data-bulk-form") || form.querySelector("[data-bulk-action]") !== null;
  }

  // localStorage can throw (private mode, storage disabled): remembering a
  // preference is a nicety, never a reason for the page to break.
  function remember(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (ignored) {
      /* preference not kept */
    }
  }

  function recall(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (ignored) {
      return null;
    }
  }

  // ------------------------------------------------------------------ htmx

  if (window.htmx) {
    // htmx would add a <style> element for its indicator class; asyncz.css
    // carries those rules instead, so no inline style is needed.
    window.htmx.config.includeIndicatorStyles = false;
    // Nothing in the dashboard needs htmx to evaluate code (hx-on, js: values)
    // or to run <script> tags from swapped fragments; the CSP would block them
    // anyway, so turn them off rather than leave a path that merely fails.
    window.htmx.config.allowEval = false;
    window.htmx.config.allowScriptTags = false;
    // The dashboard only ever talks to its own origin.
    window.htmx.config.selfRequestsOnly = true;
  }

  // ------------------------------------------------------------------ toasts

  var HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function escapeHtml(value) {
    return String(value).replace(/[&<>"']/g, (character) => HTML_ESCAPES[character]);
  }

  function toast(message, level) {
    if (!message) {
      return;
    }
    var kind = TOAST_LEVELS.indexOf(level) >= 0 ? level : "info";
    if (typeof window.Toastify !== "function") {
      // Toastify failed to load: say it somewhere rather than nowhere.
      window.console.info("[asyncz] " + kind + ": " + message);
      return;
    }
    window
      .Toastify({
        // Toastify 1.6 inserts `text` as HTML (it has no `node` option yet),
        // and messages may carry task names typed by users: escape them.
        text: escapeHtml(message),
        duration: kind === "error" ? 8000 : 4000,
        gravity: "top",
        position: "right",
        close: true,
        stopOnFocus: true,
        className: "az-toast az-toast--" + kind,
      })
      .showToast();
  }

  // htmx dispatches the events named in an HX-Trigger header on the element that
  // made the request; they bubble here with the JSON value as event.detail.
  document.addEventListener("asyncz:toast", function (event) {
    var detail = event.detail || {};
    toast(detail.message, detail.level);
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    var status = xhr ? xhr.status : "?";
    // A response that already announced its own toast needs no second one.
    var trigger = xhr && xhr.getResponseHeader("HX-Trigger");
    if (!trigger || trigger.indexOf("asyncz:toast") < 0) {
      toast("The request failed (HTTP " + status + ").", "error");
    }
  });

  // A form the server refuses (400 with HX-Retarget at the form's error slot) shows
  // its message there: htmx swaps no error response unless told to.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.status === 400 && xhr.getResponseHeader("HX-Retarget")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The periodic table refresh waits while rows are ticked: a swap would drop the
  // selection the next bulk action is about to use.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.target;
    if (
      source &&
      source.hasAttribute &&
      source.hasAttribute("data-auto-refresh") &&
      document.querySelector('input[name="row"]:checked')
    ) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:sendError", function () {
    toast("The dashboard could not be reached.", "error");
  });

  // ------------------------------------------------------------------ delegated controls

  function byIdFrom(element, attribute) {
    var id = element.getAttribute(attribute);
    return id ? document.getElementById(id) : null;
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }

    var dismiss = target.closest("[data-dismiss-target]");
    if (dismiss) {
      var dismissed = byIdFrom(dismiss, "data-dismiss-target");
      if (dismissed) {
        dismissed.hidden = true;
      }
      return;
    }

    var toggle = target.closest("[data-password-toggle]");
    if (toggle) {
      event.preventDefault(); // it may sit inside the login form
      var input = byIdFrom(toggle, "data-password-toggle");
      if (input) {
        var reveal = input.type === "password";
        input.type = reveal ? "text" : "password";
        toggle.setAttribute("aria-pressed", reveal ? "true" : "false");
        var label = toggle.getAttribute(reveal ? "data-label-hide" : "data-label-show");
        if (label) {
          toggle.textContent = label;
        }
        input.focus();
      }
    }
  });

  // Confirmation runs in the capture phase, on the document, before htmx's
  // own listeners on the element: stopping the event there means neither htmx
  // nor the browser acts on a cancelled request.
  //
  // A button carrying data-confirm is asked on "click": htmx sends an hx-post
  // button's request on click and no submit event follows, and a browser turns
  // Enter in a form into a click on its default button, so the keyboard is
  // asked too. A form carrying data-confirm is asked on "submit". A submit
  // button already confirmed by its click is not asked again by its submit.
  var confirmedSubmitter = null;

  function cancelled(element) {
    var question = element && element.getAttribute("data-confirm");
    return Boolean(question) && !window.confirm(question);
  }

  function stop(event) {
    event.preventDefault();
    event.stopPropagation();
  }

  document.addEventListener(
    "click",
    function (event) {
      var target = event.target instanceof Element ? event.target : null;
      var asking = target && target.closest("[data-confirm]");
      if (!asking || asking.tagName === "FORM" || asking.disabled) {
        return;
      }
      if (cancelled(asking)) {
        stop(event);
      } else {
        confirmedSubmitter = asking;
      }
    },
    true
  );

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      var submitter = event.submitter || null;
      var confirmed = submitter !== null && submitter === confirmedSubmitter;
      confirmedSubmitter = null;
      if (confirmed) {
        return;
      }
      var asking = submitter && submitter.hasAttribute("data-confirm") ? submitter : form;
      if (cancelled(asking)) {
        stop(event);
      }
    },
    true
  );

  // ------------------------------------------------------------------ Alpine components

  document.addEventListener("alpine:init", () => {
    /*
     * The page frame: sidebar + workspace. The template wires the toggle
     * itself (x-on:click="toggleSidebar" on the [data-sidebar-toggle] button)
     * and may bind x-bind:class="shellClass" (az-shell--collapsed). The state
     * is also written as data-sidebar-state="collapsed|expanded" on the
     * element, so the CSS works with or without the class binding, and it is
     * remembered across pages in localStorage.
     */
    Alpine.data("asynczShell", () => ({
      sidebarCollapsed: false,

      init() {
        this.sidebarCollapsed = recall(STORAGE_SIDEBAR) === "collapsed";
        this.applySidebar();
      },

      get shellClass() {
        return this.sidebarCollapsed ? "az-shell--collapsed" : "";
      },

      toggleSidebar() {
        this.sidebarCollapsed = !this.sidebarCollapsed;
        remember(STORAGE_SIDEBAR, this.sidebarCollapsed ? "collapsed" : "expanded");
        this.applySidebar();
      },

      applySidebar() {
        var state = this.sidebarCollapsed ? "collapsed" : "expanded";
        this.$root.setAttribute("data-sidebar-state", state);
        this.$root.querySelectorAll("[data-sidebar-toggle]").forEach((button) => {
          button.setAttribute("aria-expanded", this.sidebarCollapsed ? "false" : "true");
        });
      },
    }));

    /*
     * The tasks page: filters panel, "new task" panel, table density, bulk
     * selection.
     *
     * The filters panel starts open when the element says so
     * (data-filters-open="true", e.g. because a filter is active). Density is
     * "comfortable" or "compact"; compact puts az-density-compact on the
     * component's element (also offered as x-bind:class="densityClass").
     *
     * Selection is read from the row checkboxes ([data-select-row], or
     * checkboxes named "row") whenever one changes, and written as a JSON
     * array into every input[name="ids"] inside the component, so the bulk
     * form is always ready to send. Bulk buttons ([data-bulk-action], or the
     * submit buttons of a [data-bulk-form]) are disabled while nothing is
     * selected.
     */
    Alpine.data("asynczTasks", () => ({
      filtersOpen: false,
      createOpen: false,
      density: "comfortable",
      selectedIds: [],

      init() {
        this.filtersOpen = this.$root.getAttribute("data-filters-open") === "true";
        this.density = recall(STORAGE_DENSITY) === "compact" ? "compact" : "comfortable";
        this.applyDensity();

        this.$root.addEventListener("change", (event) => {
          var target = event.target instanceof Element ? event.target : null;
          if (!target) {
            return;
          }
          if (target.matches("[data-select-all]")) {
            this.rowBoxes().forEach((box) => {
              box.checked = target.checked;
            });
          }
          if (target.matches("[data-select-all], " + ROW_BOXES)) {
            this.readSelection();
          }
        });

        // Capture phase: runs before htmx (listening on the form itself)
        // collects the form's values, and can still stop an empty bulk send.
        this.$root.addEventListener(
          "submit",
          (event) => {
            this.readSelection();
            if (isBulkForm(event.target) && this.selectedIds.length === 0) {
              stop(event);
              toast("Select at least one task first.", "warning");
            }
          },
          true
        );

        // Content swapped in by htmx (a new page of the table, a refresh)
        // brings fresh, unchecked rows and bulk buttons: start over from them.
        this.$root.addEventListener("htmx:load", () => this.readSelection());
        this.readSelection();
      },

      // -- panels
      toggleFilters() {
        this.filtersOpen = !this.filtersOpen;
      },

      toggleCreate() {
        this.createOpen = !this.createOpen;
      },

      closeCreate() {
        this.createOpen = false;
      },

      // -- density
      get isCompact() {
        return this.density === "compact";
      },

      get densityClass() {
        return this.isCompact ? "az-density-compact" : "";
      },

      toggleDensity() {
        this.setDensity(this.isCompact ? "comfortable" : "compact");
      },

      // For a <select> or radio group: x-on:change="changeDensity".
      changeDensity(event) {
        this.setDensity(event && event.target ? event.target.value : "comfortable");
      },

      setDensity(value) {
        this.density = value === "compact" ? "compact" : "comfortable";
        remember(STORAGE_DENSITY, this.density);
        this.applyDensity();
      },

      applyDensity() {
        this.$root.classList.toggle("az-density-compact", this.isCompact);
        this.$root.querySelectorAll("[data-density-toggle]").forEach((button) => {
          button.setAttribute("aria-pressed", this.isCompact ? "true" : "false");
        });
      },

      // -- selection
      get selectedCount() {
        return this.selectedIds.length;
      },

      get hasSelection() {
        return this.selectedIds.length > 0;
      },

      rowBoxes() {
        return Array.prototype.slice.call(this.$root.querySelectorAll(ROW_BOXES));
      },

      readSelection() {
        var boxes = this.rowBoxes();
        this.selectedIds = boxes.filter((box) => box.checked).map((box) => box.value);
        var count = this.selectedIds.length;
        var all = this.$root.querySelector("[data-select-all]");
        if (all) {
          all.checked = boxes.length > 0 && count === boxes.length;
          all.indeterminate = count > 0 && count < boxes.length;
        }
        var encoded = JSON.stringify(this.selectedIds);
        this.$root.querySelectorAll('input[name="ids"]').forEach((input) => {
          input.value = encoded;
        });
        this.$root.querySelectorAll(BULK_BUTTONS).forEach((button) => {
          button.disabled = count === 0;
        });
      },

      clearSelection() {
        this.rowBoxes().forEach((box) => {
          box.checked = false;
        });
        this.readSelection();
      },
    }));
  });

  // For other scripts of the dashboard (and the browser console).
  window.asyncz = { toast: toast };
})();
