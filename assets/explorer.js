/* The bottleneck explorer's issue list (dashboards/explorer.py): an issue's number links to
   its trace, in the view's language and at its instant. The number is written as text by
   React, never as markup. */
window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {};

window.dashAgGridComponentFunctions.IssueLink = function (props) {
    if (props.value === null || props.value === undefined) {
        return null;
    }
    const id = String(props.value);
    return React.createElement("a", {
        href: "/issue/" + encodeURIComponent(id) + "?" + (props.query || ""),
        className: "explorer-issue-link",
    }, id);
};
